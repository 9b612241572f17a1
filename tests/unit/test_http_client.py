"""How an API error quotes what came back: a web page (a wrong URL or path prefix reaches a UI,
a proxy or a 404 page) by a short snippet of its title or text, with a hint, never its HTML."""

import json

import pytest

from ansible_collections.sre.runbooks.plugins.module_utils.api import client as http_client
from ansible_collections.sre.runbooks.plugins.module_utils.api.client import HTML_HINT, ApiError, HttpClient, Response, body_text, summarise_body
from ansible_collections.sre.runbooks.plugins.module_utils.notify import pagerduty, slack
from conftest import Route

# nginx's 404 behind a reverse proxy that serves a single-page app: a style sheet, a script and
# the message, as a wrong path prefix gets it.
NOT_FOUND = b'''<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>404 Not Found
     | Acme   Monitoring</title>
  <style type="text/css">
    body { font-family: -apple-system, "Segoe UI", sans-serif; color: #333; margin: 4em auto; max-width: 40em; }
    h1 { font-size: 2em; border-bottom: 1px solid #eee; }
  </style>
  <script>
    window.dataLayer = window.dataLayer || [];
    function gtag(){dataLayer.push(arguments);} gtag('js', new Date()); gtag('config', 'UA-000000-2');
  </script>
</head>
<body>
  <!-- served by the edge proxy -->
  <h1>Not Found</h1>
  <p>The requested URL /prometheus/api/v1/query was not found on this server.</p>
  <hr><address>nginx/1.25.3 &amp; friends</address>
</body>
</html>
'''
HTML = {'Content-Type': 'text/html; charset=utf-8'}


def page(body, status=404, headers=None):
    return Response(status, HTML if headers is None else headers, body)


def test_a_404_page_is_quoted_by_its_title_with_the_hint():
    said = summarise_body(None, page(NOT_FOUND))
    assert said == '"404 Not Found | Acme Monitoring": ' + HTML_HINT
    assert HTML_HINT == 'this looks like a web page, not the API: check the URL and its path prefix'


def test_a_page_without_title_is_quoted_by_its_text_without_script_style_or_tags():
    untitled = NOT_FOUND.replace(b'<title>404 Not Found\n     | Acme   Monitoring</title>', b'')
    said = body_text(page(untitled))
    snippet = said[:-len(': ' + HTML_HINT)]
    assert snippet == '"Not Found The requested URL /prometheus/api/v1/query was not found on this server. nginx/1.25.3 & friends"'
    assert len(snippet) <= http_client.SNIPPET_CHARS + 2
    for leak in ('<', 'gtag', 'font-family', 'edge proxy'):
        assert leak not in said


def test_a_long_page_is_cut_to_the_snippet_length():
    long_page = b'<html><body><p>' + b'word ' * 200 + b'</p></body></html>'
    snippet = body_text(page(long_page, 502)).split('": ')[0] + '"'
    assert len(snippet) == http_client.SNIPPET_CHARS + 2 and snippet.endswith('..."')


@pytest.mark.parametrize('body,headers', [
    (b'<!doctype html><title>Grafana</title>', {}),  # no content type: sniffed from the body
    (b'<html><head><title>Grafana</title></head></html>', {'Content-Type': 'text/plain'}),
    (b'<title>Grafana</title>', HTML)])
def test_web_pages_are_known_by_type_or_start(body, headers):
    assert body_text(page(body, 200, headers)) == '"Grafana": ' + HTML_HINT


def test_a_plain_answer_labelled_html_is_quoted_as_it_is():
    # Slack's webhooks answer their error names as text/html.
    assert body_text(Response(404, HTML, b'no_service')) == 'no_service'


def test_an_empty_page_and_other_bodies():
    assert body_text(page(b'<html><body>  </body></html>')) == 'an empty web page: ' + HTML_HINT
    plain = Response(500, {'Content-Type': 'text/plain'}, b'rpc error: code = Unavailable')
    assert summarise_body(None, plain) == 'rpc error: code = Unavailable'
    assert summarise_body(None, Response(500, {}, b'')) == '(empty body)'
    assert summarise_body({'error': 'bad query'}, plain) == 'bad query'


def test_expect_json_names_a_web_page_and_keeps_its_questions(server):
    server.routes['/prometheus/api/v1/query'] = Route(404, NOT_FOUND, HTML)
    server.routes['/api/v1/query'] = Route(200, NOT_FOUND, HTML)
    client = HttpClient(server.url, name='Prometheus', retries=0)
    with pytest.raises(ApiError) as not_found:
        client.get_json('/prometheus/api/v1/query')
    assert str(not_found.value) == ('Prometheus at %s/prometheus/api/v1/query answered HTTP 404: '
                                    '"404 Not Found | Acme Monitoring": %s' % (server.url, HTML_HINT))
    with pytest.raises(ApiError) as ok_page:
        client.get_json('/api/v1/query')
    assert str(ok_page.value) == (
        'Prometheus at %s/api/v1/query answered HTTP 200 with text/html, not JSON ("404 Not Found | Acme Monitoring"): '
        '%s (is this the API URL, not a UI, proxy or login page?)' % (server.url, HTML_HINT))


def test_expect_json_quotes_other_text_as_before(server):
    server.routes['/api'] = Route(200, b'ok', {'Content-Type': 'text/plain'})
    with pytest.raises(ApiError, match=r"with text/plain, not JSON: is this the API URL .*Body starts: 'ok'"):
        HttpClient(server.url, retries=0).get_json('/api')


def test_refused_credentials_keep_a_snippet_of_a_login_page(server):
    server.routes['/api'] = Route(401, NOT_FOUND.replace(b'404 Not Found', b'Sign in'), HTML)
    with pytest.raises(ApiError) as refused:
        HttpClient(server.url, name='Loki', retries=0).get_json('/api')
    assert refused.value.body == '"Sign in | Acme Monitoring": ' + HTML_HINT


def test_slack_and_pagerduty_quote_a_web_page_the_same_way(server):
    assert pagerduty.rest_error(page(NOT_FOUND), 'GET', '/incidents/P1') == (
        'PagerDuty REST API answered HTTP 404 to GET /incidents/P1: "404 Not Found | Acme Monitoring": %s; '
        'check incident_id (the incident id, such as PT4KHLK, not its number)' % HTML_HINT)
    assert pagerduty.events_error(page(NOT_FOUND, 502), '/v2/enqueue', 3) == (
        'PagerDuty Events API (/v2/enqueue) answered HTTP 502 after 3 retries: "404 Not Found | Acme Monitoring": '
        + HTML_HINT)
    refusal = json.dumps({'ok': False, 'error': 'x'}).encode()
    assert 'x' in pagerduty.events_error(Response(500, {}, refusal), '/v2/enqueue', 3)
    server.routes['/chat.postMessage'] = Route(404, NOT_FOUND, HTML)
    client = slack.Slack({'token': 'xoxb-t', 'webhook_url': None, 'api_url': server.url, 'timeout': 5.0,
                          'retries': 0, 'validate_certs': True, 'max_retry_after': 30.0})
    with pytest.raises(ApiError) as refused:
        client.call('chat.postMessage', {'channel': 'C0INC', 'text': 'x'})
    assert str(refused.value) == ('Slack answered chat.postMessage with HTTP 404: "404 Not Found | Acme Monitoring": '
                                  + HTML_HINT)

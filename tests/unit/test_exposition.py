"""Reading /metrics pages and finding exhausted connection pools (the DhakaCart runbook's pg_pool)."""

from ansible_collections.sre.runbooks.plugins.module_utils.prometheus.exposition import exhausted_pools, parse_exposition

PAGE = '''# HELP pg_pool_max Maximum connections
# TYPE pg_pool_max gauge
pg_pool_max{db="orders"} 20
pg_pool_active{db="orders"} 20
pg_pool_idle{db="orders"} 0
pg_pool_waiting{db="orders"} 7
pg_pool_max{db="users"} 10
pg_pool_active{db="users"} 3
pg_pool_idle{db="users"} 7
pg_pool_waiting{db="users"} 0
http_requests_total{service="api",endpoint="/a \\"b\\""} 12 1795443780000
redis_pool_in_use 4
redis_pool_size 4
weird_metric NaN
'''


def test_parse_selected_samples_with_labels():
    samples = parse_exposition(PAGE, r'^pg_pool_')
    assert len(samples) == 8
    assert samples[0] == {'name': 'pg_pool_max', 'labels': {'db': 'orders'}, 'value': 20.0}
    everything = parse_exposition(PAGE)
    assert {'name': 'http_requests_total', 'labels': {'service': 'api', 'endpoint': '/a "b"'},
            'value': 12.0} in everything
    assert {'name': 'weird_metric', 'labels': {}, 'value': None} in everything


def test_exhausted_pools_full_or_starved():
    assert exhausted_pools(parse_exposition(PAGE)) == ['pg_pool{db=orders}', 'redis_pool']


def test_healthy_pools_are_not_exhausted():
    page = 'pg_pool_max 10\npg_pool_active 9\npg_pool_idle 1\npg_pool_waiting 2\n'
    assert exhausted_pools(parse_exposition(page)) == []
    assert exhausted_pools([]) == []

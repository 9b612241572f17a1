"""feature-store (127.0.0.1:8081): fake feature lookups (a few ms of work)."""

import random
import time
import zlib

from common import Service

SERVICE = "feature-store"


def features(req):
    entity = req.params["id"]
    time.sleep(random.uniform(0.001, 0.005))
    rnd = random.Random(zlib.crc32(entity.encode()))
    return 200, {"id": entity, "features": {"values": [round(rnd.random(), 4) for _index in range(4)],
                                            "updated_at": "2024-11-01T00:00:00Z"}}


def main():
    svc = Service(SERVICE, 8081)
    svc.route("GET", "/v1/features/{id}", features)
    return svc.serve()


if __name__ == "__main__":
    raise SystemExit(main())

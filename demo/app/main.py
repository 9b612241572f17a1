"""Container entry point: runs the service named by $SERVICE (baked into each image)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MODULES = {
    "inference-gateway": "inference_gateway",
    "model-service": "model_service",
    "feature-store": "feature_store",
    "orders": "orders",
    "loadgen": "loadgen",
}

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SERVICE", "")
    if name not in MODULES:
        sys.stderr.write("main.py: unknown service %r (one of: %s)\n" % (name, ", ".join(MODULES)))
        raise SystemExit(2)
    raise SystemExit(__import__(MODULES[name]).main())

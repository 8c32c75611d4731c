"""`python serve_tiny.py DATA_DIR PORT STEP_DELAY`: a real server process on tiny models (restart tests)."""

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]

import torch  # noqa: E402
import uvicorn  # noqa: E402
from server_helpers import TINY_CATALOG, TinyRun  # noqa: E402

from sfumato.core.settings import Settings  # noqa: E402
from sfumato.server import create_app  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(1)
    data, port, delay = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    settings = Settings(data_dir=data)
    app = create_app(
        settings, run=TinyRun(settings, step_delay=delay), catalog=TINY_CATALOG, poll_seconds=0.05
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")

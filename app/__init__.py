"""Firebreak's runtime services.

Importing any part of Firebreak first pins the process offline: LiteLLM must
never fetch its price map and sentence-transformers never a model hub.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

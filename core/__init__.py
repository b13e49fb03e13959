"""Firebreak's ground floor: the error tree, the settings types and the run statuses.

Every layer stands on it and it stands on nothing of Firebreak's. Importing it first pins the process offline:
LiteLLM must never fetch its price map and sentence-transformers never a model hub.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

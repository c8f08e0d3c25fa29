"""Network definitions (these modules import torch; the method modules import them lazily)."""

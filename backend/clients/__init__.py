"""Backend clients: what the bots call. None of them imports torch at module import time."""

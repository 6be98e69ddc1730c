"""Voice-clone backend: the Qwen3-TTS engine, the Modal app and the clients the bots call.

Importing this package (or `backend.schema`, `backend.clients`, `backend.audio`) never imports torch:
bot processes use the clients; only `backend.engine` pulls in the GPU stack.
"""

"""`langfoundry serve`: an OpenAI-compatible chat server for the champion and challenger models.

`routing` decides which model answers (A/B by a sticky hash of the user id, or shadow: the challenger
answers a copy that is logged, never returned), `generation` loads a model folder and generates under a
lock, `store` logs every answer and its feedback in a SQL database (SQLite by default, PostgreSQL by URL),
`app` is the FastAPI application and `cli` the command. Nothing here is imported by a pipeline stage.
"""

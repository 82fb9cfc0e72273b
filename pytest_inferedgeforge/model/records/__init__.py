"""The pydantic records: the single source of every JSON shape Forge writes or reads."""

"""Getting data in: acquire, readers, ingest into the record schema, split, chat formatting."""

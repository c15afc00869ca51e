"""What every stage uses: parameters, errors, the record schema, storage, streaming, the inventory, text keys."""

"""The edition and its file format: the model, the parser, finding and writing files."""

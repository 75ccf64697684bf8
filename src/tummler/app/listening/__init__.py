"""Listening services: train and load the text models, read what people say about the brand."""

"""What people say about the brand: sentiment, topics, routing. Pure."""

"""Reading, describing, fetching and shaping the four datasets, and their built-in phantoms."""

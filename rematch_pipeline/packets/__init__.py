"""Pre-arrival packets (German HTML and PDF) for each receiving municipality per matching round."""

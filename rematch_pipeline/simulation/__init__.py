"""`rematch simulate`: weekly rounds through the real pipeline on a throwaway home, against the hindsight optimum."""

"""What the user asks for: the sweep spec (``spec``) and its search space (``space``)."""

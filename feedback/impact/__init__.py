"""Impact: experiments on showing the AI, impact panels, and the analyses run on them."""

"""Search spaces. Importing this package registers the built-in ones."""

from proxybench.spaces._base import SearchSpace, get_space, list_spaces, register_space, space_option_names
from proxybench.spaces import nb201  # noqa: E402,F401  (registers "nb201")
from proxybench.spaces import darts  # noqa: E402,F401  (registers "darts")
from proxybench.spaces import ofa  # noqa: E402,F401  (registers "ofa"; the ofa package is imported on use)

__all__ = ["SearchSpace", "get_space", "list_spaces", "register_space", "space_option_names"]

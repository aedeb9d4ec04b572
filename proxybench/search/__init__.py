"""Search: problem definition, objectives (F_AR, F_CP, any proxy), surrogates, NSGA-II loop, archive.

Public API so far::

    from proxybench.search.objectives import f_ar, gamma_from_archive, f_cp
"""

from proxybench.search.objectives import f_ar, f_cp, gamma_from_archive

__all__ = ["f_ar", "f_cp", "gamma_from_archive"]

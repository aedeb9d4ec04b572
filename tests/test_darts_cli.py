"""``proxybench score --space darts`` with a small network through ``--space-option``."""

from __future__ import annotations

import json

import duckdb
from click.testing import CliRunner

from proxybench_cli.main import cli


def test_score_darts_zero_cost_with_space_options(tmp_path, data_dir):
    args = ["score", "--space", "darts", "--sample", "3", "--proxies", "zero-cost", "--batch-size", "8",
            "--threads", "1", "--data-dir", str(data_dir), "--out", str(tmp_path), "--quiet",
            "--space-option", "channels=4", "--space-option", "layers=5"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "scored 3 architectures x 14 proxies = 42 rows, 0 errors, 0 non-finite" in result.output
    rows = duckdb.connect().execute(
        "SELECT count(*), count(DISTINCT arch), count(DISTINCT proxy), bool_and(status = 'ok'), any_value(settings) "
        "FROM read_parquet(?)", [str(tmp_path / "scores" / "*.parquet")]).fetchone()
    assert rows[:4] == (42, 3, 14, True)
    assert json.loads(rows[4])["space_settings"] == {"channels": 4, "layers": 5, "auxiliary": False}


def test_space_option_errors(tmp_path):
    runner = CliRunner()
    base = ["score", "--sample", "1", "--out", str(tmp_path), "--no-download"]
    result = runner.invoke(cli, [*base, "--space", "nb201", "--space-option", "channels=4"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == ("Error: search space 'nb201' has no option ['channels']; "
                                              "its options: none")
    result = runner.invoke(cli, [*base, "--space", "darts", "--space-option", "channels"])
    assert result.exit_code == 2 and "'channels': write KEY=VALUE, e.g. channels=8" in result.output
    result = runner.invoke(cli, [*base, "--space", "ofa", "--space-option", "random_init=true", "--random-init"])
    assert result.exit_code == 2 and "space option 'random_init' is given twice" in result.output


def test_a_search_pick_names_the_network_size_it_was_scored_at():
    import shlex

    from proxybench.search.loop import train_recipe
    from proxybench.spaces import get_space
    from proxybench_cli._options import space_options_from

    space = get_space("darts", channels=4, layers=5)
    recipe = train_recipe(space, space.smallest(), "cifar10")
    args = shlex.split(recipe["command"])
    assert args[:2] == ["proxybench", "evaluate"]
    # The evaluate command parses the pick's flags back into the same space.
    with cli.commands["evaluate"].make_context("evaluate", args[2:]) as ctx:
        options = space_options_from(None, None, False)
    assert ctx.params["arch"] == space.smallest()
    assert get_space(ctx.params["space"], **options).settings() == space.settings()

"""Definitions are checked when they are built: cycles, missing steps, bad names."""

from __future__ import annotations

import pytest

from headway import Headway
from headway.workflows import DefinitionError, Workflow, approval, chain, dag, group, step
from headway.workflows import constants as c


def test_chain_links_each_step_to_the_previous_one() -> None:
    wf = chain("c", "t.fetch", "t.summarize", approval("review"), "t.publish")
    assert list(wf.steps) == ["fetch", "summarize", "review", "publish"]
    assert wf.steps["fetch"].after == () and wf.steps["fetch"].mode == c.INPUT
    assert wf.steps["summarize"].after == ("fetch",) and wf.steps["summarize"].mode == c.VALUE
    assert wf.steps["publish"].after == ("review",)


def test_chain_with_a_group_gives_the_next_step_a_list() -> None:
    wf = chain("c", "t.a", ["t.b", "t.b", "t.c"], "t.join")
    assert list(wf.steps) == ["a", "b", "b-2", "c", "join"]
    assert wf.steps["b-2"].after == ("a",)
    assert wf.steps["join"].after == ("b", "b-2", "c")
    assert wf.steps["join"].mode == c.LIST


def test_group_fans_out_on_the_input() -> None:
    wf = group("g", ["t.x", "t.y"], then=step("t.merge", name="merge"))
    assert wf.steps["x"].mode == c.INPUT and wf.steps["y"].mode == c.INPUT
    assert wf.steps["merge"].after == ("x", "y") and wf.steps["merge"].mode == c.LIST


def test_dag_orders_steps_and_gives_several_results_as_a_dict() -> None:
    wf = dag(
        "d",
        {
            "join": step("t.j", after=["left", "right"]),
            "left": step("t.l", after="root"),
            "right": step("t.r", after="root"),
            "root": "t.root",
        },
    )
    order = list(wf.steps)
    assert order[0] == "root" and order[-1] == "join"
    assert wf.steps["join"].mode == c.DICT
    assert Workflow.from_spec(wf.to_spec()).to_spec() == wf.to_spec()


def test_a_cycle_is_rejected_when_defined() -> None:
    with pytest.raises(DefinitionError, match="cycle"):
        dag("d", {"a": step("t.a", after="b"), "b": step("t.b", after="a")})
    with pytest.raises(DefinitionError, match="itself"):
        dag("d", {"a": step("t.a", after="a")})


def test_a_missing_step_is_rejected_when_defined() -> None:
    with pytest.raises(DefinitionError, match="missing step 'nope'"):
        dag("d", {"a": "t.a", "b": step("t.b", after=["a", "nope"])})


@pytest.mark.parametrize(
    "build",
    [
        lambda: chain("bad name!", "t.a"),
        lambda: chain("empty"),
        lambda: dag("d", {"a:b": "t.a"}),
        lambda: dag("d", {}),
        lambda: chain("c", step("t.a", name="x"), step("t.b", name="x")),
        lambda: chain("c", 42),
        lambda: step("t.a", collect="everything"),
        lambda: approval("ok", expires_in=0),
        lambda: chain("c", "t.a", []),
    ],
)
def test_bad_definitions_raise_definition_error(build) -> None:
    with pytest.raises(DefinitionError):
        build()


def test_define_checks_tasks_and_names(tmp_path) -> None:
    hw = Headway(data_dir=tmp_path)

    @hw.jobs.task(name="t.known")
    async def known(x: int) -> int:
        return x

    flows = hw.workflows
    flows.chain("ok", known, approval("review", approvers=[7]))
    assert flows.definition("ok").steps["review"].approvers == ("7",)
    with pytest.raises(DefinitionError, match="unknown tasks"):
        flows.chain("bad", "t.unknown")
    with pytest.raises(DefinitionError, match="already named"):
        flows.chain("ok", known, known)
    with pytest.raises(DefinitionError, match="no workflow named"):
        flows.definition("nope")

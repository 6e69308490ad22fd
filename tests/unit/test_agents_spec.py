"""Agent files (TOML/YAML/JSON): the examples load, and bad files fail with a one-line error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from noosphere.agents.spec import AgentFileError, AgentSpec, load_agent_spec, slugify

EXAMPLES = Path(__file__).parents[2] / "examples" / "agents"
EXAMPLE_FILES = sorted(p for p in EXAMPLES.iterdir() if p.is_file())
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

VALID_YAML = """\
name: Test Agent
description: Does tests.
skills:
  - name: Testing
    description: Runs tests.
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def load_error(path: Path) -> str:
    """The AgentFileError message for ``path``, checked to be one line naming the file."""
    with pytest.raises(AgentFileError) as info:
        load_agent_spec(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert path.name in message
    return message


# ---- the shipped examples --------------------------------------------------------------------


def test_there_are_six_examples_in_toml_yaml_and_json() -> None:
    assert len(EXAMPLE_FILES) == 6
    assert {p.suffix for p in EXAMPLE_FILES} == {".toml", ".yaml", ".json"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_agent_file_loads(path: Path) -> None:
    spec = load_agent_spec(path)
    assert isinstance(spec, AgentSpec)
    assert spec.name and spec.description and spec.skills


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_agent_and_skill_ids_are_slugs(path: Path) -> None:
    spec = load_agent_spec(path)
    assert SLUG.match(spec.id), spec.id
    for skill in spec.skills:
        assert SLUG.match(skill.id), skill.id


def test_example_agent_ids_are_unique() -> None:
    ids = [load_agent_spec(p).id for p in EXAMPLE_FILES]
    assert len(set(ids)) == len(ids)


def test_ids_default_to_slug_of_name(tmp_path: Path) -> None:
    spec = load_agent_spec(write(tmp_path, "a.yaml", VALID_YAML))
    assert spec.id == "test-agent"
    assert spec.skills[0].id == "testing"


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Data Wrangler", "data-wrangler"),
        ("  --Hello,  World!--", "hello-world"),
        ("数据", "agent"),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_same_agent_in_yaml_toml_and_json_is_equal(tmp_path: Path) -> None:
    yaml_spec = load_agent_spec(write(tmp_path, "a.yml", VALID_YAML))
    toml_spec = load_agent_spec(
        write(
            tmp_path,
            "a.toml",
            'name = "Test Agent"\ndescription = "Does tests."\n'
            '[[skills]]\nname = "Testing"\ndescription = "Runs tests."\n',
        )
    )
    json_spec = load_agent_spec(
        write(
            tmp_path,
            "a.JSON",
            '{"name": "Test Agent", "description": "Does tests.",'
            ' "skills": [{"name": "Testing", "description": "Runs tests."}]}',
        )
    )
    assert yaml_spec == toml_spec == json_spec


# ---- bad files -------------------------------------------------------------------------------


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "agent.txt", VALID_YAML))
    assert ".toml, .yaml, .yml or .json" in message


def test_invalid_yaml_is_refused_in_one_line(tmp_path: Path) -> None:
    assert "YAML" in load_error(write(tmp_path, "agent.yaml", "name: [unclosed\nskills: x\n"))


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    assert "not valid TOML" in load_error(write(tmp_path, "agent.toml", "name = \n"))


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    assert "not valid JSON" in load_error(write(tmp_path, "agent.json", '{"name": '))


def test_missing_skills_names_field(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "name: A\ndescription: d\n")
    assert "skills: Field required" in load_error(path)


def test_empty_skills_names_field(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "name: A\ndescription: d\nskills: []\n")
    assert "skills:" in load_error(path)


def test_attribute_without_colon_names_field(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", VALID_YAML + "attributes: [acme]\n")
    message = load_error(path)
    assert "attributes" in message
    assert "'acme'" in message


def test_duplicate_skill_ids_are_refused(tmp_path: Path) -> None:
    text = (
        "name: A\ndescription: d\nskills:\n"
        "  - {name: Same Skill, description: one}\n"
        "  - {name: same-skill, description: two}\n"
    )
    assert "skill ids must be unique" in load_error(write(tmp_path, "a.yaml", text))


def test_negative_price_names_field(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", VALID_YAML + "price: {amount: -1}\n")
    assert "price.amount" in load_error(path)


def test_non_slug_id_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", VALID_YAML + "id: Not A Slug\n")
    assert "lowercase letters, digits and dashes" in load_error(path)


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", VALID_YAML + "colour: blue\n")
    assert "colour" in load_error(path)


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "- name: A\n  description: d\n")
    assert "must be a mapping" in load_error(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    assert "must be a mapping" in load_error(write(tmp_path, "a.yaml", ""))


def test_missing_file_is_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path / "missing.yaml")
    assert "cannot read agent file" in message


def test_directory_path_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "agent.yaml"
    directory.mkdir()
    assert "cannot read agent file" in load_error(directory)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    load_error(write(tmp_path, "a.json", b'{"name": "\xff"}'))

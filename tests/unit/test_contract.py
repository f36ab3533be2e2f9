"""The yagna contract kept in the repository, and the generator that makes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate as validate_openapi

from tests.contract import generate
from tests.support.openapi import CONTRACT_PATH, YagnaContract, load_contract

UPSTREAM_FILES = {
    "activity-api.yaml",
    "common.yaml",
    "identity-api.yaml",
    "market-api.yaml",
    "net-api-v2.yaml",
    "payment-api.yaml",
    "version-api.yaml",
}


def test_the_contract_in_the_repository_is_valid_openapi() -> None:
    document = json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))
    validate_openapi(document)
    upstream = document["info"]["x-upstream"]
    assert upstream["repository"] == "golemfactory/ya-client"
    assert upstream["commit"]
    assert set(upstream["files"]) == UPSTREAM_FILES
    for facts in upstream["files"].values():
        assert len(facts["sha256"]) == 64 and facts["version"]
    text = CONTRACT_PATH.read_text(encoding="utf-8")
    assert '"summary"' not in text and '"example"' not in text and '"tags"' not in text
    contract = load_contract()
    assert len(contract.operations()) > 60
    assert contract.operation_id("POST", "/market-api/v1/demands") == "subscribeDemand"


def test_a_missing_contract_fails_and_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make contract"):
        YagnaContract.from_file(tmp_path / "yagna-openapi.json")


def test_yaml_loader_keeps_yaml_11_lookalikes_as_strings() -> None:
    text = "a: on\nb: no\nc: 2024-05-01\nd: true\ne: 201\n"
    assert yaml.load(text, Loader=generate._SpecLoader) == {
        "a": "on",
        "b": "no",
        "c": "2024-05-01",
        "d": True,
        "e": 201,
    }


COMMON = """
openapi: 3.0.2
info: {version: 1.0.0, title: Commons}
responses:
  Err:
    description: An error
    content:
      application/json:
        schema: {$ref: '#/components/schemas/Err'}
components:
  securitySchemes:
    app_key: {type: http, scheme: bearer}
  schemas:
    Err:
      description: prose that goes
      required: [message]
      properties:
        message: {type: string}
        description: {type: string, description: a property named description stays}
"""

ZOO = """
openapi: 3.0.2
info: {version: 2.1.0, title: Zoo, description: prose}
servers: [{url: 'http://localhost/zoo/v1/'}]
security: [{app_key: []}]
tags: [{name: pets, description: prose}]
paths:
  /pets/{id}:
    get:
      tags: [pets]
      summary: prose
      operationId: getPet
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      x-codegen-request-body-name: whatever
      responses:
        200:
          description: prose
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Pet'}
              example: {kind: Cat, lives: 7}
        '4XX':
          $ref: 'common.yaml#/responses/Err'
components:
  securitySchemes:
    app_key:
      $ref: 'common.yaml#/components/securitySchemes/app_key'
  schemas:
    Pet:
      type: object
      required: [kind]
      discriminator: {propertyName: kind}
      properties:
        kind: {type: string}
        born: {type: string, format: date-time, nullable: true}
        mood: {type: string, enum: [calm, wild], nullable: true}
    Cat:
      allOf:
        - $ref: '#/components/schemas/Pet'
        - type: object
          required: [lives]
          properties:
            lives: {type: integer, minimum: 0, maximum: 9, exclusiveMaximum: true}
    Lion:
      allOf:
        - $ref: '#/components/schemas/Cat'
"""


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "common.yaml").write_text(COMMON)
    (folder / "market-api.yaml").write_text(ZOO)
    (folder / "README.md").write_text("from ya-client (directory `specs/`, commit 0abc123, ...)")
    return folder


def test_generated_from_specs_written_here(specs: Path) -> None:
    """Mounts, refs across files, prose dropped, security per operation, discriminators."""
    document = generate.build(specs)
    validate_openapi(document)
    text = generate.render(document)
    assert "prose" not in text and "x-codegen" not in text and "whatever" not in text
    assert document["info"]["x-upstream"]["commit"] == "0abc123"
    assert document["info"]["x-upstream"]["files"]["market-api.yaml"]["version"] == "2.1.0"
    op = document["paths"]["/zoo/v1/pets/{id}"]["get"]
    assert op["security"] == [{"app_key": []}]
    assert op["responses"]["4XX"] == {"$ref": "#/components/responses/Err"}
    schemas = document["components"]["schemas"]
    assert schemas["Err"]["type"] == "object"  # had properties and no type
    assert "description" in schemas["Err"]["properties"]
    assert schemas["Pet"]["properties"]["mood"]["enum"] == ["calm", "wild", None]
    assert sorted(schemas["AnyPet"]["discriminator"]["mapping"]) == ["Cat", "Lion"]

    contract = YagnaContract(document)
    assert contract.operation_id("get", "/zoo/v1/pets/1") == "getPet"
    ok = {"kind": "Cat", "lives": 8, "born": None, "mood": None}
    contract.validate_response("GET", "/zoo/v1/pets/1", 200, ok)
    contract.validate_response("GET", "/zoo/v1/pets/1", 200, {"kind": "Lion", "lives": 1})
    with pytest.raises(AssertionError, match="'lives' is a required property"):
        contract.validate_response("GET", "/zoo/v1/pets/1", 200, {"kind": "Cat"})
    with pytest.raises(AssertionError) as info:
        contract.validate_response("GET", "/zoo/v1/pets/1", 200, {"kind": "Cat", "lives": 9})
    assert "at /lives: 9 is greater than or equal to the maximum of 9" in str(info.value)
    assert "(schema #/components/schemas/Cat/allOf/1/properties/lives" in str(info.value)
    with pytest.raises(AssertionError, match=r"'Dog' is not one of \['Cat', 'Lion'\]"):
        contract.validate_response("GET", "/zoo/v1/pets/1", 200, {"kind": "Dog"})
    contract.validate_response("GET", "/zoo/v1/pets/1", 404, {"message": "no such pet"})
    with pytest.raises(AssertionError, match="#/components/schemas/Err"):
        contract.validate_response("GET", "/zoo/v1/pets/1", 418, {})


def test_check_mode_and_refusals(specs: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "contract.json"
    assert generate.main(["--specs", str(specs), "--output", str(output), "--check"]) == 1
    assert generate.main(["--specs", str(specs), "--output", str(output)]) == 0
    assert generate.main(["--specs", str(specs), "--output", str(output), "--check"]) == 0
    (specs / "market-api.yaml").write_text(ZOO.replace("lives", "legs"))
    assert generate.main(["--specs", str(specs), "--output", str(output), "--check"]) == 1
    assert generate.main(["--specs", str(tmp_path / "nowhere"), "--output", str(output)]) == 2
    assert "no ya-client specs there" in capsys.readouterr().err
    alias = "$ref: 'common.yaml#/components/securitySchemes/app_key'"
    (specs / "market-api.yaml").write_text(ZOO.replace(alias, "{type: http, scheme: basic}"))
    assert generate.main(["--specs", str(specs), "--output", str(output)]) == 2
    assert "differs between" in capsys.readouterr().err

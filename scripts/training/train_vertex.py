r"""Train AutoML image classification on Vertex AI: an Edge model that runs inside predict, or a
cloud model to deploy on an endpoint.

    # Edge: train, export as TF Lite into the training bucket, evaluate it with predict's own code,
    # write its model card beside it, and print the config that serves it (scales to zero)
    python -m scripts.training.train_vertex --project P --region europe-west4 \
        --import-file gs://acme-qi-training/casting_data/import.csv --edge --budget 4

    # Cloud: train, then deploy to an endpoint (billed every hour it is deployed)
    python -m scripts.training.train_vertex --project P --region europe-west4 \
        --import-file gs://acme-qi-training/casting_data/import.csv --budget 8 --deploy
    python -m scripts.training.train_vertex --project P --region europe-west4 --undeploy --endpoint 1234567890

Costs (https://cloud.google.com/vertex-ai/pricing, image classification): Edge training is $18.00
per node hour (--budget 1 to 100; 4 costs at most $72), cloud training $3.465 per node hour
(--budget 8 to 800; 8 costs at most about $28). Training may stop early; you pay for what ran. An
Edge model then costs only predict's CPU time. A deployed cloud model costs $1.375 per node hour,
about $1,000 a month for one node, whether or not it gets traffic. --undeploy stops it.

It uses google-cloud-aiplatform's v1 clients over REST. The predict function never imports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from dataclasses import dataclass

from inspection import layout
from inspection.errors import ConfigError
from inspection.labels import LabelMap
from inspection.model.card import ModelCard
from inspection.model.classifiers import CARD_FILE
from inspection.routing import DEFAULT_THRESHOLD
from scripts import locations
from scripts.training import evaluate, metrics
from scripts.training import guard as training_guard
from scripts.training.datasets import read_import_file, read_text
from scripts.training.models import ModelRef

SCHEMAS = "gs://google-cloud-aiplatform/schema"
IMAGE_METADATA = f"{SCHEMAS}/dataset/metadata/image_1.0.0.yaml"
SINGLE_LABEL_IMPORT = f"{SCHEMAS}/dataset/ioformat/image_classification_single_label_io_format_1.0.0.yaml"
AUTOML_IMAGE_CLASSIFICATION = f"{SCHEMAS}/trainingjob/definition/automl_image_classification_1.0.0.yaml"
ML_USE = "labels.aiplatform.googleapis.com/ml_use"
KNOWN_CLASSES = LabelMap()  # the class names prepare writes and the Kaggle folders use
DONE = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}
PAUSED = "PIPELINE_STATE_PAUSED"

# Model type → (the budget range the API accepts in node hours, USD per node hour). Budgets:
# https://cloud.google.com/vertex-ai/docs/reference/rest/v1/schema/trainingjob.definition/AutoMlImageClassificationInputs
# Prices: https://cloud.google.com/vertex-ai/pricing (image data, classification).
CLOUD = "CLOUD"
EDGE_TYPES = ("MOBILE_TF_LOW_LATENCY_1", "MOBILE_TF_VERSATILE_1", "MOBILE_TF_HIGH_ACCURACY_1")
MODEL_TYPES = {CLOUD: ((8, 800), 3.465), **{edge: ((1, 100), 18.0) for edge in EDGE_TYPES}}
EDGE_DEFAULT = "MOBILE_TF_VERSATILE_1"
# What an AutoML Edge TF Lite export holds (https://cloud.google.com/vertex-ai/docs/export/export-edge-model,
# "Output files"): one model.tflite, its labels inside it as TF Lite metadata, in the folder the
# export operation names. (AutoML Vision exports had a dict.txt beside it; predict still reads one.)
EDGE_FILES = ("model.tflite",)


@dataclass
class Vertex:
    """The four v1 clients we use, on one regional endpoint."""

    project: str
    region: str
    api_endpoint: str = ""
    credentials: object = None

    def __post_init__(self):
        from google.cloud import aiplatform_v1

        options = {"api_endpoint": self.api_endpoint or f"{self.region}-aiplatform.googleapis.com"}
        kwargs = {"transport": "rest", "client_options": options, "credentials": self.credentials}
        self.datasets = aiplatform_v1.DatasetServiceClient(**kwargs)
        self.pipelines = aiplatform_v1.PipelineServiceClient(**kwargs)
        self.models = aiplatform_v1.ModelServiceClient(**kwargs)
        self.endpoints = aiplatform_v1.EndpointServiceClient(**kwargs)
        self.parent = f"projects/{self.project}/locations/{self.region}"


def create_dataset(vertex: Vertex, name: str, import_file: str) -> str:
    """An image dataset with the import file's rows and ML_USE splits; returns its resource name."""
    dataset = vertex.datasets.create_dataset(
        parent=vertex.parent, dataset={"display_name": name, "metadata_schema_uri": IMAGE_METADATA}
    ).result()
    print(f"dataset {dataset.name}: importing {import_file} (often 10-20 minutes) …")
    vertex.datasets.import_data(
        name=dataset.name,
        import_configs=[{"gcs_source": {"uris": [import_file]}, "import_schema_uri": SINGLE_LABEL_IMPORT}],
    ).result(timeout=4 * 3600)
    items = int(vertex.datasets.get_dataset(name=dataset.name).data_item_count or 0)
    try:
        rows = len(read_import_file(read_text(import_file)))
    except Exception as exc:  # Vertex read it; this machine may not: say what we know
        print(f"Vertex imported {items} images (the import file is not readable here: {type(exc).__name__})")
        return dataset.name
    if items < rows:
        print(
            f"warning: Vertex imported {items} of the {rows} images in {import_file}; it drops duplicates "
            "and files it cannot read. See the dataset's import errors in the console."
        )
    else:
        print(f"Vertex imported all {items} images")
    return dataset.name


def check_budget(model_type: str, budget_node_hours: float) -> str:
    """'' when the API accepts the budget for the model type, else why not."""
    (low, high), _ = MODEL_TYPES[model_type]
    if low <= budget_node_hours <= high:
        return ""
    return f"--budget must be between {low} and {high} node hours for {model_type}; got {budget_node_hours:g}"


def start_training(
    vertex: Vertex, dataset: str, name: str, budget_node_hours: float, model_type: str = CLOUD
) -> str:
    """An AutoML image classification pipeline on the import file's own split; returns its name."""
    from google.protobuf import json_format, struct_pb2

    inputs = struct_pb2.Value()
    json_format.ParseDict(
        {
            "multiLabel": False,
            "modelType": model_type,
            "budgetMilliNodeHours": int(budget_node_hours * 1000),
            "disableEarlyStopping": False,
        },
        inputs,
    )
    pipeline = vertex.pipelines.create_training_pipeline(
        parent=vertex.parent,
        training_pipeline={
            "display_name": name,
            "training_task_definition": AUTOML_IMAGE_CLASSIFICATION,
            "training_task_inputs": inputs,
            "input_data_config": {
                "dataset_id": dataset.rsplit("/", 1)[-1],
                "filter_split": {
                    split + "_filter": f"{ML_USE}={split}" for split in ("training", "validation", "test")
                },
            },
            "model_to_upload": {"display_name": name},
        },
    )
    return pipeline.name


def wait(
    vertex: Vertex, pipeline: str, poll_seconds: float = 60.0, max_hours: float = 48.0, price: float = 0.0
) -> str:
    """Poll until the pipeline ends, or `max_hours` pass (then it says how to pick up later);
    returns the trained model's resource name. A paused pipeline is said once, and waited for."""
    from tqdm import tqdm

    started = time.monotonic()
    said_paused = False
    with tqdm(desc="training", bar_format="{desc}: {postfix} [{elapsed}]") as bar:
        while True:
            state = vertex.pipelines.get_training_pipeline(name=pipeline)
            bar.set_postfix_str(state.state.name)
            bar.update()
            if state.state.name in DONE:
                break
            if state.state.name == PAUSED and not said_paused:
                said_paused = True
                tqdm.write(f"{pipeline} is paused; it resumes from the console or the API, and this waits")
            if time.monotonic() - started > max_hours * 3600:
                raise SystemExit(
                    f"{pipeline} still {state.state.name} after {max_hours:g} h; it goes on in Vertex AI. "
                    "Watch it in the console; this run stops waiting."
                )
            time.sleep(poll_seconds)
    if state.state.name != "PIPELINE_STATE_SUCCEEDED":
        raise SystemExit(f"training ended {state.state.name}: {state.error.message}")
    print(f"trained {state.model_to_upload.name} in {(time.monotonic() - started) / 3600:.1f} h")
    from google.protobuf import json_format

    task = json_format.MessageToDict(state._pb.training_task_metadata) or {}
    if "costMilliNodeHours" in task:
        used = float(task["costMilliNodeHours"]) / 1000
        print(f"it used {used:g} node hours: ${used * price:.2f} at ${price:g} per node hour")
    return state.model_to_upload.name


def evaluation(vertex: Vertex, model: str) -> dict:
    """Per-label precision and recall, the confusion matrix and defects passed as ok."""
    from google.protobuf import json_format

    evaluations = list(vertex.models.list_model_evaluations(parent=model))
    if not evaluations:
        raise SystemExit(f"{model} has no evaluation")
    answer = json_format.MessageToDict(evaluations[0]._pb.metrics)
    matrix = answer["confusionMatrix"]
    labels = [spec["displayName"] for spec in matrix["annotationSpecs"]]
    rows = [[int(v) for v in row] for row in matrix["rows"]]
    counts = metrics.confusion(
        {
            (truth, predicted): rows[t][p]
            for t, truth in enumerate(labels)
            for p, predicted in enumerate(labels)
        }
    )
    per_label = metrics.per_label(counts, labels)
    ours = [KNOWN_CLASSES.entries.get(label.strip().lower()) for label in labels]
    defect = ours.index("defect") if "defect" in ours else None
    ok = ours.index("ok") if "ok" in ours else None
    passed = rows[defect][ok] if defect is not None and ok is not None else None
    return {"labels": labels, "rows": rows, "per_label": per_label, "defects_passed_as_ok": passed}


def describe(result: dict) -> str:
    lines = ["evaluation on the test split:"]
    for label, m in result["per_label"].items():
        lines.append(f"  {label:10s} precision {m['precision']:.1%}  recall {m['recall']:.1%}")
    lines.append("  confusion (rows: truth): " + ", ".join(result["labels"]))
    lines += [f"    {label:10s} {row}" for label, row in zip(result["labels"], result["rows"], strict=True)]
    lines.append(f"  defects passed as ok: {result['defects_passed_as_ok']}")
    return "\n".join(lines)


def export_tflite(vertex: Vertex, model: str, destination: str) -> str:
    """Export an Edge model as TF Lite under `destination`; returns the folder Vertex wrote it to,
    checked to hold the files predict reads."""
    from inspection import storage

    print(f"exporting {model} as TF Lite to {destination} …")
    operation = vertex.models.export_model(
        name=model,
        output_config={
            "export_format_id": "tflite",
            "artifact_destination": {"output_uri_prefix": destination.rstrip("/") + "/"},
        },
    )
    operation.result(timeout=3600)
    folder = operation.metadata.output_info.artifact_output_uri.rstrip("/")
    bucket, prefix = layout.split_gs_uri(folder)
    found = {b.name.rsplit("/", 1)[-1] for b in storage.client().list_blobs(bucket, prefix=prefix + "/")}
    missing = [name for name in EDGE_FILES if name not in found]
    if missing:
        raise SystemExit(f"the export in {folder} lacks {', '.join(missing)}; it holds {sorted(found)}")
    return folder


def agreement_with_vertex(vertex_result: dict, scored, label_map: LabelMap) -> list[str]:
    """Where our evaluation of the exported file disagrees with Vertex's own evaluation of the model
    on the test split, beyond sampling noise: each label's recall (top label, as Vertex's confusion
    matrix counts it) may differ by at most 3 standard errors plus one image. A larger gap means the
    image reaches the model differently here than in Vertex: the preprocessing."""
    rows, labels = vertex_result["rows"], vertex_result["labels"]
    ours = metrics.per_label(metrics.confusion((s.truth, s.label) for s in scored))
    problems = []
    for index, name in enumerate(labels):
        label = label_map.label_of(name)
        total = sum(rows[index])
        if not total or label not in ours or not ours[label]["support"]:
            continue
        theirs = rows[index][index] / total
        here, n = ours[label]["recall"], ours[label]["support"]
        allowed = 3 * math.sqrt(max(theirs * (1 - theirs), 1 / n) / n) + 1 / n
        if abs(here - theirs) > allowed:
            problems.append(
                f"recall of {label}: {theirs:.1%} in Vertex's evaluation, {here:.1%} here on {n} images "
                f"(at most {allowed:.1%} apart by chance)"
            )
    return problems


def edge_model(args, vertex: Vertex, model: str, pipeline: str, name: str, vertex_result: dict) -> ModelRef:
    """Export the Edge model, evaluate it locally as predict would run it, and put its card beside it."""
    from inspection import storage

    folder = export_tflite(vertex, model, args.export or default_export(args.import_file))
    rows = read_import_file(read_text(args.import_file))
    trained = [row for row in rows if row[0] != "test"]
    tested = [(uri, label) for split, uri, label in rows if split == "test"]
    validated = [(uri, label) for split, uri, label in rows if split == "validation"]
    if not tested:
        raise SystemExit(f"{args.import_file} has no test rows to evaluate the model on")
    ref = ModelRef("tflite", f"{folder}/{EDGE_FILES[0]}")
    try:
        classifier = ref.open()
    except ConfigError as exc:
        raise SystemExit(f"the export in {folder} cannot serve: {exc}") from None
    card = ModelCard(
        model=name,
        labels=tuple(classifier.labels),
        preprocessing="automl-edge-tflite: RGB resized to the input; uint8 as is, float in [0, 1]",
        source={
            "kind": "vertex-automl-edge",
            "model_type": args.model_type,
            "budget_milli_node_hours": int(args.budget * 1000),
            "training_pipeline": pipeline,
            "model": model,
            "import_file": args.import_file,
            "export": folder,
        },
    )
    guard_at = training_guard.write_beside(
        ref.location,
        training_guard.photos([uri for _, uri, _ in trained], "measure training images"),
        args.import_file,
    )
    ref = dataclasses.replace(ref, guard=guard_at)
    print(f"input guard written to {guard_at}")
    classifier = ref.open()  # judged behind its guard, as predict will run it
    classifier.card = card
    label_map = LabelMap.parse(args.label_map, key="--label-map")
    threshold = args.threshold
    if threshold is None and validated:
        on_validation = evaluate.score_all(validated, classifier, label_map)
        threshold = metrics.choose_threshold(evaluate.outcomes(on_validation))
        print(
            f"threshold {threshold:g}, chosen on {len(validated)} validation images (never on the test split)"
        )
    elif threshold is None:
        threshold = DEFAULT_THRESHOLD
        print(f"no validation rows: threshold {threshold:g} (choose one with scripts.training.evaluate)")
    scored = evaluate.score_all(tested, classifier, label_map)
    print(f"evaluation of the exported model with predict's code, on {len(scored)} test images:")
    print(evaluate.report(evaluate.summarise(scored), evaluate.sweep(scored)))
    disagreements = agreement_with_vertex(vertex_result, scored, label_map)
    if disagreements:
        raise SystemExit(
            "the exported model, run here as predict runs it, disagrees with Vertex's own evaluation of "
            "the same test split: " + "; ".join(disagreements) + ". The image reaches the model "
            "differently here (decoding, resizing, normalisation): nothing was written, nothing serves it."
        )
    card = dataclasses.replace(card, evaluation=metrics.card_evaluation(evaluate.outcomes(scored), threshold))
    bucket, path = layout.split_gs_uri(f"{folder}/{CARD_FILE}")
    storage.client().bucket(bucket).blob(path).upload_from_string(card.to_json(), "application/json")
    print(f"model card written to gs://{bucket}/{path}")
    return ref


def endpoint_guard(args, name: str) -> str:
    """The endpoint's input guard, fitted on the training rows of the import file. An endpoint has
    no folder: it goes where an Edge export of the model would. When the photos cannot be read
    here, the line to fit it later is printed instead, and the stack refuses the endpoint until
    inputGuard names a guard (or `none`)."""
    location = f"{args.export or default_export(args.import_file)}/{name}/endpoint.guard.json"
    try:
        trained = [row for row in read_import_file(read_text(args.import_file)) if row[0] != "test"]
        return training_guard.write(
            training_guard.fit(
                training_guard.photos([uri for _, uri, _ in trained], "measure training images"),
                args.import_file,
            ),
            location,
        )
    except (OSError, SystemExit) as exc:
        print(
            f"no input guard written ({exc}); fit it from the training photos, then serve it:\n"
            f"  python -m scripts.training.guard {args.import_file} {location}"
        )
        return location


def default_export(import_file: str) -> str:
    """models/ in the bucket that holds the training data: the training bucket."""
    bucket, _ = layout.split_gs_uri(import_file)
    return f"gs://{bucket}/models"


def deploy(vertex: Vertex, model: str, name: str) -> str:
    """A new endpoint with the model on one node; returns the endpoint id."""
    endpoint = vertex.endpoints.create_endpoint(
        parent=vertex.parent, endpoint={"display_name": name}
    ).result()
    print(f"deploying to {endpoint.name} (often 10-20 minutes; billing starts now) …")
    vertex.endpoints.deploy_model(
        endpoint=endpoint.name,
        deployed_model={
            "model": model,
            "display_name": name,
            "automatic_resources": {"min_replica_count": 1, "max_replica_count": 1},
        },
        traffic_split={"0": 100},
    ).result(timeout=3 * 3600)
    return endpoint.name.rsplit("/", 1)[-1]


def undeploy(vertex: Vertex, endpoint_id: str) -> int:
    """Undeploy every model from the endpoint: the endpoint stays, the hourly cost stops. A model
    that holds traffic cannot be undeployed while others remain unless the traffic moves with it
    (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/undeployModel),
    so each undeploy hands the traffic to a model still there; the last takes an empty split."""
    name = f"{vertex.parent}/endpoints/{endpoint_id}"
    deployed = [model.id for model in vertex.endpoints.get_endpoint(name=name).deployed_models]
    for index, model in enumerate(deployed):
        remaining = deployed[index + 1 :]
        vertex.endpoints.undeploy_model(
            endpoint=name, deployed_model_id=model, traffic_split={remaining[0]: 100} if remaining else {}
        ).result(timeout=3600)
        print(f"undeployed {model} from {name}")
    return len(deployed)


def main(argv: list[str] | None = None, vertex: Vertex | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True, help="e.g. europe-west4; the endpoint's region")
    parser.add_argument(
        "--import-file", help="gs:// import file from scripts.training.prepare or retrain_from_reviews"
    )
    parser.add_argument("--name", default="quality-inspection", help="display name prefix")
    parser.add_argument(
        "--edge",
        action="store_true",
        help=f"train an AutoML Edge model ({EDGE_DEFAULT} unless --model-type) to run inside predict",
    )
    parser.add_argument(
        "--model-type",
        choices=list(MODEL_TYPES),
        help=f"CLOUD (default) or an Edge type: {', '.join(EDGE_TYPES)}",
    )
    parser.add_argument(
        "--budget",
        type=float,
        help="node hours to train: Edge 1-100 at $18.00 each (default 4), cloud 8-800 at $3.465 (default 8)",
    )
    parser.add_argument("--export", help="gs:// folder for the Edge export (default: models/ by the data)")
    parser.add_argument(
        "--threshold",
        type=float,
        help="predictionThreshold the model card reports at (default: chosen on the validation split)",
    )
    parser.add_argument("--label-map", default="", help="as the LABEL_MAP setting")
    parser.add_argument("--deploy", action="store_true", help="deploy to a new endpoint (~$1,000/month)")
    parser.add_argument("--undeploy", action="store_true", help="undeploy everything from --endpoint")
    parser.add_argument("--endpoint", help="endpoint id for --undeploy")
    parser.add_argument("--poll-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--max-hours", type=float, default=48.0, help="stop waiting for training after this long (default 48)"
    )
    args = parser.parse_args(argv)

    if args.undeploy:
        if not args.endpoint:
            parser.error("--undeploy needs --endpoint")
        vertex = vertex or Vertex(args.project, args.region)
        count = undeploy(vertex, args.endpoint)
        print(f"{count} model(s) undeployed; the endpoint no longer bills node hours")
        return 0
    if not args.import_file or not locations.remote(args.import_file):
        parser.error("--import-file gs://… is required for training")
    args.model_type = args.model_type or (EDGE_DEFAULT if args.edge else CLOUD)
    edge = args.model_type in EDGE_TYPES
    if args.deploy and edge:
        parser.error("an Edge model cannot be deployed to an endpoint; it runs inside predict (tflite)")
    if args.export and not (edge and locations.remote(args.export)):
        parser.error("--export gs://… is for Edge models")
    if args.threshold is not None and not 0.5 < args.threshold <= 1:
        parser.error("--threshold must be in (0.5, 1], as predictionThreshold")
    args.budget = args.budget if args.budget is not None else (4.0 if edge else 8.0)
    problem = check_budget(args.model_type, args.budget)
    if problem:
        parser.error(problem)
    vertex = vertex or Vertex(args.project, args.region)
    _, price = MODEL_TYPES[args.model_type]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{args.name}-{stamp}"
    dataset = create_dataset(vertex, name, args.import_file)
    pipeline = start_training(vertex, dataset, name, args.budget, args.model_type)
    print(
        f"training {pipeline} ({args.model_type}) with a budget of {args.budget:g} node hours "
        f"(≤ ${args.budget * price:.2f})"
    )
    model = wait(vertex, pipeline, args.poll_seconds, args.max_hours, price)
    vertex_result = evaluation(vertex, model)
    print(describe(vertex_result))
    if edge:
        ref = edge_model(args, vertex, model, pipeline, name, vertex_result)
        print("Compare it with the model serving now, and promote it if it is no worse:")
        print(f"  python -m scripts.training.promote {ref.location}")
        print("or serve it directly:")
        for line in ref.config_lines():
            print(f"  {line}")
        print("  pulumi up")
    elif args.deploy:
        endpoint_id = deploy(vertex, model, name)
        guard_at = endpoint_guard(args, name)
        print(f"endpoint {endpoint_id} serves the model. Point the pipeline at it, behind its guard:")
        print(f"  pulumi config set vertexEndpointId {endpoint_id}")
        print(f"  pulumi config set vertexRegion {args.region}")
        print(f"  pulumi config set inputGuard {guard_at}")
        print("  pulumi up")
        print(
            "stop the hourly cost later with: python -m scripts.training.train_vertex "
            f"--project {args.project} --region {args.region} --undeploy --endpoint {endpoint_id}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

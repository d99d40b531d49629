"""Train, evaluate, deploy and undeploy the AutoML image classification model on Vertex AI.

    python -m scripts.training.train_vertex --project P --region europe-west4 \
        --import-file gs://acme-qi-training/casting_data/import.csv --budget 8 --deploy
    python -m scripts.training.train_vertex --project P --region europe-west4 --undeploy --endpoint 1234567890

Costs (Vertex AI pricing, image classification): AutoML training is $3.465 per node hour, so
--budget 8 costs at most about $28 (training may stop early, and you pay only for what ran).
A deployed model costs $1.375 per node hour, about $1,000 a month for one node, whether or not
it gets traffic: it is the pipeline's dominant cost. --undeploy stops it.

It uses google-cloud-aiplatform's v1 clients over REST. The predict function never imports it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from inspection.labels import LabelMap
from scripts.training import metrics

SCHEMAS = "gs://google-cloud-aiplatform/schema"
IMAGE_METADATA = f"{SCHEMAS}/dataset/metadata/image_1.0.0.yaml"
SINGLE_LABEL_IMPORT = f"{SCHEMAS}/dataset/ioformat/image_classification_single_label_io_format_1.0.0.yaml"
AUTOML_IMAGE_CLASSIFICATION = f"{SCHEMAS}/trainingjob/definition/automl_image_classification_1.0.0.yaml"
ML_USE = "labels.aiplatform.googleapis.com/ml_use"
KNOWN_CLASSES = LabelMap()  # the class names prepare writes and the Kaggle folders use
DONE = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}


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
    return dataset.name


def start_training(vertex: Vertex, dataset: str, name: str, budget_node_hours: float) -> str:
    """An AutoML image classification pipeline on the import file's own split; returns its name."""
    from google.protobuf import json_format, struct_pb2

    inputs = struct_pb2.Value()
    json_format.ParseDict(
        {
            "multiLabel": False,
            "modelType": "CLOUD",
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


def wait(vertex: Vertex, pipeline: str, poll_seconds: float = 60.0) -> str:
    """Poll until the pipeline ends; returns the trained model's resource name."""
    from tqdm import tqdm

    started = time.monotonic()
    with tqdm(desc="training", bar_format="{desc}: {postfix} [{elapsed}]") as bar:
        while True:
            state = vertex.pipelines.get_training_pipeline(name=pipeline)
            bar.set_postfix_str(state.state.name)
            bar.update()
            if state.state.name in DONE:
                break
            time.sleep(poll_seconds)
    if state.state.name != "PIPELINE_STATE_SUCCEEDED":
        raise SystemExit(f"training ended {state.state.name}: {state.error.message}")
    print(f"trained {state.model_to_upload.name} in {(time.monotonic() - started) / 3600:.1f} h")
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
    """Undeploy every model from the endpoint: the endpoint stays, the hourly cost stops."""
    name = f"{vertex.parent}/endpoints/{endpoint_id}"
    deployed = vertex.endpoints.get_endpoint(name=name).deployed_models
    for model in deployed:
        vertex.endpoints.undeploy_model(endpoint=name, deployed_model_id=model.id).result(timeout=3600)
        print(f"undeployed {model.id} from {name}")
    return len(deployed)


def main(argv: list[str] | None = None, vertex: Vertex | None = None) -> None:
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
        "--budget",
        type=float,
        default=8.0,
        help="node hours to train, at $3.465 each (default 8: at most ~$28)",
    )
    parser.add_argument("--deploy", action="store_true", help="deploy to a new endpoint (~$1,000/month)")
    parser.add_argument("--undeploy", action="store_true", help="undeploy everything from --endpoint")
    parser.add_argument("--endpoint", help="endpoint id for --undeploy")
    parser.add_argument("--poll-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    vertex = vertex or Vertex(args.project, args.region)

    if args.undeploy:
        if not args.endpoint:
            parser.error("--undeploy needs --endpoint")
        count = undeploy(vertex, args.endpoint)
        print(f"{count} model(s) undeployed; the endpoint no longer bills node hours")
        return
    if not args.import_file or not args.import_file.startswith("gs://"):
        parser.error("--import-file gs://… is required for training")
    if not 1 <= args.budget <= 1000:
        parser.error("--budget must be between 1 and 1000 node hours")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dataset = create_dataset(vertex, f"{args.name}-{stamp}", args.import_file)
    pipeline = start_training(vertex, dataset, f"{args.name}-{stamp}", args.budget)
    print(f"training {pipeline} with a budget of {args.budget:g} node hours (≤ ${args.budget * 3.465:.2f})")
    model = wait(vertex, pipeline, args.poll_seconds)
    print(describe(evaluation(vertex, model)))
    if args.deploy:
        endpoint_id = deploy(vertex, model, f"{args.name}-{stamp}")
        print(f"endpoint {endpoint_id} serves the model. Point the pipeline at it:")
        print(f"  pulumi config set vertexEndpointId {endpoint_id}")
        print(f"  pulumi config set vertexRegion {args.region}")
        print("  pulumi up")
        print(
            "stop the hourly cost later with: python -m scripts.training.train_vertex "
            f"--project {args.project} --region {args.region} --undeploy --endpoint {endpoint_id}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env bash
# One-time set-up of Google Cloud for this repository (idempotent: run it again after changes).
# Needs: gcloud, logged in as a project owner (or someone who may grant IAM roles).
#   bash infra/gcp/setup.sh            # uses the values below, from mlops.yaml's defaults
#   PROJECT_ID=other-project bash infra/gcp/setup.sh
# No key is created anywhere: builds run as a service account, Vertex AI as another.
# The last part (infra/gcp/operate.sh) wires what happens after a deploy: capture, alerts, retraining.
set -euo pipefail

PROJECT_ID="${PROJECT_ID:-my-ml-project-ml}"
REGION="${REGION:-us-central1}"
BUCKET="${BUCKET:-my-ml-project-ml-mlops}"
BUILDER="cloudbuild-runner@${PROJECT_ID}.iam.gserviceaccount.com"   # runs the builds
RUNNER="vertex-runner@${PROJECT_ID}.iam.gserviceaccount.com"        # runs pipelines and endpoints
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="my-ml-project"   # the triggers' names start with it (infra/gcp/triggers/*.yaml)

echo "== APIs"
gcloud services enable --project "$PROJECT_ID" \
  cloudbuild.googleapis.com aiplatform.googleapis.com storage.googleapis.com \
  iam.googleapis.com logging.googleapis.com \
  bigquery.googleapis.com monitoring.googleapis.com pubsub.googleapis.com cloudscheduler.googleapis.com

echo "== bucket gs://${BUCKET} (models, build artifacts, pipeline root)"
if ! gcloud storage buckets describe "gs://${BUCKET}" --project "$PROJECT_ID" >/dev/null 2>&1; then
  gcloud storage buckets create "gs://${BUCKET}" --project "$PROJECT_ID" --location "$REGION" \
    --uniform-bucket-level-access --public-access-prevention
fi

echo "== service accounts"
for account in cloudbuild-runner vertex-runner; do
  if ! gcloud iam service-accounts describe "${account}@${PROJECT_ID}.iam.gserviceaccount.com" \
      --project "$PROJECT_ID" >/dev/null 2>&1; then
    gcloud iam service-accounts create "$account" --project "$PROJECT_ID" \
      --display-name "my-ml-project: ${account}"
  fi
done

grant_project() {  # member role
  gcloud projects add-iam-policy-binding "$PROJECT_ID" --member "$1" --role "$2" \
    --condition None --quiet >/dev/null
}

echo "== least-privilege roles"
# Builds: write logs, use Vertex AI (register, deploy, submit pipelines), read/write the bucket only,
# and act as vertex-runner (pipelines and endpoints run as it), nothing else.
grant_project "serviceAccount:${BUILDER}" roles/logging.logWriter
grant_project "serviceAccount:${BUILDER}" roles/aiplatform.user
# The retrain guard step lists the ongoing builds and cancels its own build when another retrain runs.
grant_project "serviceAccount:${BUILDER}" roles/cloudbuild.builds.editor
gcloud storage buckets add-iam-policy-binding "gs://${BUCKET}" \
  --member "serviceAccount:${BUILDER}" --role roles/storage.objectAdmin >/dev/null
gcloud iam service-accounts add-iam-policy-binding "$RUNNER" --project "$PROJECT_ID" \
  --member "serviceAccount:${BUILDER}" --role roles/iam.serviceAccountUser >/dev/null
# Vertex AI runtime: pipeline components read/write the bucket and upload a model version.
grant_project "serviceAccount:${RUNNER}" roles/aiplatform.user
grant_project "serviceAccount:${RUNNER}" roles/logging.logWriter
gcloud storage buckets add-iam-policy-binding "gs://${BUCKET}" \
  --member "serviceAccount:${RUNNER}" --role roles/storage.objectAdmin >/dev/null

echo "== Pub/Sub topics of the retrain triggers (new data, drift alarm)"
for topic in "${PREFIX}-new-data" "${PREFIX}-drift-alarm"; do
  if ! gcloud pubsub topics describe "$topic" --project "$PROJECT_ID" >/dev/null 2>&1; then
    gcloud pubsub topics create "$topic" --project "$PROJECT_ID"
  fi
done

echo "== triggers (the GitHub repository must be connected to Cloud Build first, see README)"
for trigger in pull-request staging prod retrain-schedule retrain-data retrain-alarm batch; do
  gcloud builds triggers import --project "$PROJECT_ID" --source "${HERE}/triggers/${trigger}.yaml"
done

PROJECT_ID="$PROJECT_ID" REGION="$REGION" BUCKET="$BUCKET" PREFIX="$PREFIX" BUILDER="$BUILDER" \
  bash "${HERE}/operate.sh"

echo "Done. Approvers of prod builds need roles/cloudbuild.builds.approver:"
echo "  gcloud projects add-iam-policy-binding ${PROJECT_ID} --member user:NAME@EXAMPLE.COM --role roles/cloudbuild.builds.approver"

#!/usr/bin/env bash
# Operate, on Google Cloud: what watches a deployed model and retrains it without a person. Run by
# infra/gcp/setup.sh (after the triggers are imported); idempotent. Reads mlops.yaml (alerts.email,
# monitoring.retrain_schedule, data.source, gcp.capture_dataset, batch.schedule) with the repository's Python.
#   - capture: the BigQuery dataset the endpoints log their requests to (deploy sets the logging up);
#   - alerts: e-mail and Pub/Sub notification channels, and the alert policies of infra/gcp/alerts/;
#   - retraining: a Cloud Scheduler job running the retrain-schedule trigger, a Cloud Storage
#     notification of new data for the retrain-data trigger (the drift policy feeds retrain-alarm);
#   - the scheduled batch: a Cloud Scheduler job running the batch trigger on batch.schedule.
# Vertex AI Model Monitoring itself is set up by `deploy` (src/my_ml_project/targets/gcp/monitor.py).
set -euo pipefail

: "${PROJECT_ID:?}" "${REGION:?}" "${BUCKET:?}" "${PREFIX:?}" "${BUILDER:?}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/../.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "${ROOT}/.venv/bin/python" ]; then PYTHON="${ROOT}/.venv/bin/python"; else PYTHON=python3; fi
fi
INVOKER="retrain-invoker@${PROJECT_ID}.iam.gserviceaccount.com"   # Cloud Scheduler runs the triggers as it

config() {  # the value at a dotted path of mlops.yaml ('' when absent or null)
  "$PYTHON" - "${ROOT}/mlops.yaml" "$1" <<'PY'
import sys

try:
    import yaml
except ImportError:
    sys.exit("operate.sh needs PyYAML to read mlops.yaml: run it after `make install`, or set PYTHON")
node = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
for key in sys.argv[2].split("."):
    node = node.get(key) if isinstance(node, dict) else None
print("" if node is None else node)
PY
}

ALERT_EMAIL="${ALERT_EMAIL-$(config alerts.email)}"
RETRAIN_SCHEDULE="${RETRAIN_SCHEDULE-$(config monitoring.retrain_schedule)}"
BATCH_SCHEDULE="${BATCH_SCHEDULE-$(config batch.schedule)}"
DATA_SOURCE="${DATA_SOURCE-$(config data.source)}"
CAPTURE_DATASET="$(config gcp.capture_dataset)"
CAPTURE_DATASET="${CAPTURE_DATASET:-mlops_capture}"
PROJECT_NUMBER="$(gcloud projects describe "$PROJECT_ID" --format 'value(projectNumber)')"

echo "== capture: BigQuery dataset ${CAPTURE_DATASET} (request-response logs of the endpoints)"
if ! bq --project_id "$PROJECT_ID" show --dataset "${PROJECT_ID}:${CAPTURE_DATASET}" >/dev/null 2>&1; then
  bq --project_id "$PROJECT_ID" --location "$REGION" mk --dataset \
    --description "Requests and predictions the Vertex AI endpoints logged (mlops.yaml monitoring.capture_percent)" \
    "${PROJECT_ID}:${CAPTURE_DATASET}"
fi

echo "== monitoring: Vertex AI's service agent reads the baselines and writes statistics in gs://${BUCKET}/monitoring"
gcloud beta services identity create --service aiplatform.googleapis.com --project "$PROJECT_ID" >/dev/null
gcloud storage buckets add-iam-policy-binding "gs://${BUCKET}" \
  --member "serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-aiplatform.iam.gserviceaccount.com" \
  --role roles/storage.objectAdmin >/dev/null

channel() {  # type label=value display-name: the channel's name, created when missing
  local name
  name="$(gcloud beta monitoring channels list --project "$PROJECT_ID" \
    --filter "type=\"$1\" AND labels.${2%%=*}=\"${2#*=}\"" --format 'value(name)' | head -n 1)"
  if [ -z "$name" ]; then
    name="$(gcloud beta monitoring channels create --project "$PROJECT_ID" --type "$1" \
      --channel-labels "$2" --display-name "$3" --format 'value(name)')"
  fi
  echo "$name"
}

echo "== alerts: notification channels"
EMAIL_CHANNEL=""
if [ -n "$ALERT_EMAIL" ]; then
  EMAIL_CHANNEL="$(channel email "email_address=${ALERT_EMAIL}" "${PREFIX}: ${ALERT_EMAIL}")"
else
  echo "mlops.yaml alerts.email is empty: the alert policies reach nobody by e-mail (set it and run again)"
fi
ALARM_TOPIC="projects/${PROJECT_ID}/topics/${PREFIX}-drift-alarm"
ALARM_CHANNEL="$(channel pubsub "topic=${ALARM_TOPIC}" "${PREFIX}: retrain on drift")"
# Cloud Monitoring publishes to the topic as its notification service agent.
gcloud pubsub topics add-iam-policy-binding "$ALARM_TOPIC" \
  --member "serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-monitoring-notification.iam.gserviceaccount.com" \
  --role roles/pubsub.publisher >/dev/null

policy() {  # file channels: create the policy, or replace the one with its displayName
  local display existing
  display="$(sed -n 's/^displayName: //p' "$1")"   # a JSON string, quotes included
  existing="$(gcloud alpha monitoring policies list --project "$PROJECT_ID" \
    --filter "displayName=${display}" --format 'value(name)' | head -n 1)"
  if [ -z "$existing" ]; then
    gcloud alpha monitoring policies create --project "$PROJECT_ID" --policy-from-file "$1" \
      ${2:+--notification-channels "$2"} >/dev/null
  else
    gcloud alpha monitoring policies update "$existing" --project "$PROJECT_ID" --policy-from-file "$1" \
      ${2:+--set-notification-channels "$2"} >/dev/null
  fi
  echo "policy ${display}"
}

echo "== alerts: policies (infra/gcp/alerts/)"
policy "${HERE}/alerts/endpoint-errors.yaml" "$EMAIL_CHANNEL"
policy "${HERE}/alerts/endpoint-latency.yaml" "$EMAIL_CHANNEL"
policy "${HERE}/alerts/drift.yaml" "${EMAIL_CHANNEL:+${EMAIL_CHANNEL},}${ALARM_CHANNEL}"

echo "== retraining and batch: who may run the scheduled triggers (Cloud Scheduler)"
if ! gcloud iam service-accounts describe "$INVOKER" --project "$PROJECT_ID" >/dev/null 2>&1; then
  gcloud iam service-accounts create retrain-invoker --project "$PROJECT_ID" \
    --display-name "${PREFIX}: runs the retrain and batch triggers"
fi
gcloud projects add-iam-policy-binding "$PROJECT_ID" --member "serviceAccount:${INVOKER}" \
  --role roles/cloudbuild.builds.editor --condition None --quiet >/dev/null
gcloud iam service-accounts add-iam-policy-binding "$BUILDER" --project "$PROJECT_ID" \
  --member "serviceAccount:${INVOKER}" --role roles/iam.serviceAccountUser >/dev/null

schedule() {  # job trigger cron: Cloud Scheduler runs the trigger on cron (UTC); no cron deletes the job
  local action trigger_id
  if gcloud scheduler jobs describe "$1" --project "$PROJECT_ID" --location "$REGION" >/dev/null 2>&1; then
    action=update
  else
    action=create
  fi
  if [ -n "$3" ]; then
    trigger_id="$(gcloud builds triggers describe "$2" --project "$PROJECT_ID" --format 'value(id)')"
    gcloud scheduler jobs "$action" http "$1" --project "$PROJECT_ID" --location "$REGION" \
      --schedule "$3" --time-zone Etc/UTC --http-method POST --message-body '{}' \
      --uri "https://cloudbuild.googleapis.com/v1/projects/${PROJECT_ID}/locations/global/triggers/${trigger_id}:run" \
      --oauth-service-account-email "$INVOKER" >/dev/null
  elif [ "$action" = update ]; then
    gcloud scheduler jobs delete "$1" --project "$PROJECT_ID" --location "$REGION" --quiet
  fi
}

echo "== retraining on a schedule: ${RETRAIN_SCHEDULE:-none} (UTC)"
schedule "${PREFIX}-retrain" "${PREFIX}-retrain-schedule" "$RETRAIN_SCHEDULE"

echo "== scheduled batch: ${BATCH_SCHEDULE:-none} (UTC)"
schedule "${PREFIX}-batch" "${PREFIX}-batch" "$BATCH_SCHEDULE"

echo "== retraining on new data: ${DATA_SOURCE}"
case "$DATA_SOURCE" in
  gs://*)
    DATA_BUCKET="${DATA_SOURCE#gs://}"; DATA_BUCKET="${DATA_BUCKET%%/*}"
    OBJECTS="${DATA_SOURCE#gs://"${DATA_BUCKET}"}"; OBJECTS="${OBJECTS#/}"; OBJECTS="${OBJECTS%%[*?[]*}"
    DATA_TOPIC="projects/${PROJECT_ID}/topics/${PREFIX}-new-data"
    gcloud pubsub topics add-iam-policy-binding "$DATA_TOPIC" \
      --member "serviceAccount:service-${PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com" \
      --role roles/pubsub.publisher >/dev/null
    if ! gcloud storage buckets notifications list "gs://${DATA_BUCKET}" --format 'value(topic)' | grep -q "${PREFIX}-new-data"; then
      gcloud storage buckets notifications create "gs://${DATA_BUCKET}" --topic "$DATA_TOPIC" \
        --event-types OBJECT_FINALIZE --payload-format json ${OBJECTS:+--object-prefix "$OBJECTS"} >/dev/null
    fi
    ;;
  *)
    echo "data.source is not on Cloud Storage: nothing notifies the retrain-data trigger (put the data in"
    echo "gs://... and run this again, or publish to ${PREFIX}-new-data yourself when new data is ready)"
    ;;
esac
echo "Operate: set up."

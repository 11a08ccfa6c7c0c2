#!/usr/bin/env bash
# One-time set-up of My ML Project on Azure, with the az CLI (+ extensions ml and azure-devops):
#   1. resource group, Azure ML workspace and the training cluster of mlops.yaml
#   2. a user-assigned managed identity with AzureML Data Scientist on the workspace
#   3. an Azure DevOps service connection that uses it by workload identity federation (no secret)
#   4. the environments my-ml-project-staging and my-ml-project-prod, and the pipeline
#   5. the approval check on my-ml-project-prod, when APPROVER is given, and an exclusive lock on both
#      environments (with the pipeline's lockBehavior: sequential, one run at a time deploys)
#   6. alerts: an action group e-mailing alerts.email of mlops.yaml (or ALERT_EMAIL), and per deployed
#      endpoint metric alerts on server errors (5xx) and p99 latency (endpoints not deployed yet: re-run
#      this script after the first deploy)
#   7. retraining without a person: the Logic App of infra/azure/retrain-trigger.json (its managed identity
#      may queue the pipeline), fed by Event Grid with the prod monitor's drift breaches (runReason=alarm)
#      and, when DATA_ACCOUNT and DATA_CONTAINER are given, blobs created there (runReason=data)
#
# Usage: ORG=https://dev.azure.com/<org> PROJECT=<project> [REPO=<repo>] [APPROVER=<email>] [ALERT_EMAIL=<email>]
#        [DATA_ACCOUNT=<storage account> DATA_CONTAINER=<container> [DATA_PREFIX=<path/>]] infra/azure/setup.sh
# Re-running is safe: whatever exists is kept.
set -euo pipefail
cd "$(dirname "$0")/../.."   # the repository: mlops.yaml and infra/azure/retrain-trigger.json are read from it

: "${ORG:?set ORG to your Azure DevOps organization URL, e.g. https://dev.azure.com/contoso}"
: "${PROJECT:?set PROJECT to your Azure DevOps project}"
REPO="${REPO:-$(basename "$(git rev-parse --show-toplevel)")}"
LOCATION=westeurope
RESOURCE_GROUP=rg-my-ml-project
WORKSPACE=mlw-my-ml-project
COMPUTE=cpu-cluster          # keep in step with azure.compute in mlops.yaml
COMPUTE_SIZE=Standard_DS3_v2
IDENTITY=id-my-ml-project
CONNECTION=my-ml-project-azureml   # = variables.serviceConnection in azure-pipelines.yml
ENVIRONMENTS=(my-ml-project-staging my-ml-project-prod)
BRANCH=main
ENDPOINTS=(my-ml-project-staging my-ml-project-prod)   # = azure.deployments.*.endpoint
PROD_MONITOR=my_ml_project_prod_monitor   # = targets/azure/monitor.py schedule_name
ACTION_GROUP=ag-my-ml-project
WORKFLOW=retrain-my-ml-project
# alerts.email of mlops.yaml, unless ALERT_EMAIL is given.
ALERT_EMAIL="${ALERT_EMAIL-$(sed -n '/^alerts:/,/^[^ #]/s/^  email: *"\{0,1\}\([^"# ]*\)"\{0,1\}.*/\1/p' mlops.yaml 2>/dev/null | head -n 1)}"

az extension add --upgrade --only-show-errors --name ml
az extension add --upgrade --only-show-errors --name azure-devops
az extension add --upgrade --only-show-errors --name logic
az devops configure --defaults organization="$ORG" project="$PROJECT"
SUBSCRIPTION_ID="$(az account show --query id -o tsv)"
SUBSCRIPTION_NAME="$(az account show --query name -o tsv)"
TENANT_ID="$(az account show --query tenantId -o tsv)"

echo "== 1. workspace and compute"
az group create --name "$RESOURCE_GROUP" --location "$LOCATION" --output none
if ! az ml workspace show --name "$WORKSPACE" --resource-group "$RESOURCE_GROUP" --output none 2>/dev/null; then
  az ml workspace create --name "$WORKSPACE" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" --output none
fi
if ! az ml compute show --name "$COMPUTE" --resource-group "$RESOURCE_GROUP" --workspace-name "$WORKSPACE" --output none 2>/dev/null; then
  az ml compute create --name "$COMPUTE" --type amlcompute --size "$COMPUTE_SIZE" --min-instances 0 \
    --max-instances 2 --resource-group "$RESOURCE_GROUP" --workspace-name "$WORKSPACE" --output none
fi
WORKSPACE_ID="$(az ml workspace show --name "$WORKSPACE" --resource-group "$RESOURCE_GROUP" --query id -o tsv)"

echo "== 2. managed identity"
az identity create --name "$IDENTITY" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" --output none
CLIENT_ID="$(az identity show --name "$IDENTITY" --resource-group "$RESOURCE_GROUP" --query clientId -o tsv)"
PRINCIPAL_ID="$(az identity show --name "$IDENTITY" --resource-group "$RESOURCE_GROUP" --query principalId -o tsv)"
az role assignment create --assignee-object-id "$PRINCIPAL_ID" --assignee-principal-type ServicePrincipal \
  --role "AzureML Data Scientist" --scope "$WORKSPACE_ID" --output none

echo "== 3. workload-identity service connection $CONNECTION"
CONNECTION_ID="$(az devops service-endpoint list --query "[?name=='$CONNECTION'].id | [0]" -o tsv)"
if [ -z "$CONNECTION_ID" ]; then
  config="$(mktemp)"
  trap 'rm -f "$config"' EXIT
  cat >"$config" <<JSON
{
  "name": "$CONNECTION",
  "type": "azurerm",
  "url": "https://management.azure.com/",
  "authorization": {
    "scheme": "WorkloadIdentityFederation",
    "parameters": {"serviceprincipalid": "$CLIENT_ID", "tenantid": "$TENANT_ID"}
  },
  "data": {
    "subscriptionId": "$SUBSCRIPTION_ID",
    "subscriptionName": "$SUBSCRIPTION_NAME",
    "environment": "AzureCloud",
    "scopeLevel": "Subscription",
    "creationMode": "Manual"
  }
}
JSON
  CONNECTION_ID="$(az devops service-endpoint create --service-endpoint-configuration "$config" --query id -o tsv)"
fi
ISSUER="$(az devops service-endpoint show --id "$CONNECTION_ID" \
  --query authorization.parameters.workloadIdentityFederationIssuer -o tsv)"
SUBJECT="$(az devops service-endpoint show --id "$CONNECTION_ID" \
  --query authorization.parameters.workloadIdentityFederationSubject -o tsv)"
az identity federated-credential create --name azure-devops --identity-name "$IDENTITY" \
  --resource-group "$RESOURCE_GROUP" --issuer "$ISSUER" --subject "$SUBJECT" \
  --audiences api://AzureADTokenExchange --output none

echo "== 4. environments and pipeline"
for environment in "${ENVIRONMENTS[@]}"; do
  exists="$(az devops invoke --area environments --resource environments --route-parameters project="$PROJECT" \
    --http-method GET --api-version 7.1 --query "value[?name=='$environment'].id | [0]" -o tsv)"
  if [ -z "$exists" ]; then
    body="$(mktemp)"
    printf '{"name": "%s", "description": "%s"}\n' "$environment" "Deployments of $REPO" >"$body"
    az devops invoke --area environments --resource environments --route-parameters project="$PROJECT" \
      --http-method POST --api-version 7.1 --in-file "$body" --output none
    rm -f "$body"
  fi
done
if [ -z "$(az pipelines list --name "$REPO" --query '[0].id' -o tsv)" ]; then
  az pipelines create --name "$REPO" --repository "$REPO" --repository-type tfsgit --branch "$BRANCH" \
    --yml-path azure-pipelines.yml --skip-first-run true --output none
fi
PIPELINE_ID="$(az pipelines list --name "$REPO" --query '[0].id' -o tsv)"
# Let the pipeline use the connection and the environments without a first-run permission prompt.
az devops invoke --area pipelinePermissions --resource pipelinePermissions \
  --route-parameters project="$PROJECT" resourceType=endpoint resourceId="$CONNECTION_ID" \
  --http-method PATCH --api-version 7.1-preview --in-file <(printf '{"pipelines": [{"id": %s, "authorized": true}]}' "$PIPELINE_ID") \
  --output none

echo "== 5. approval check on ${ENVIRONMENTS[1]}"
if [ -n "${APPROVER:-}" ]; then
  PROD_ID="$(az devops invoke --area environments --resource environments --route-parameters project="$PROJECT" \
    --http-method GET --api-version 7.1 --query "value[?name=='${ENVIRONMENTS[1]}'].id | [0]" -o tsv)"
  APPROVER_ID="$(az devops user show --user "$APPROVER" --query id -o tsv)"
  az devops invoke --area PipelinesChecks --resource configurations --route-parameters project="$PROJECT" \
    --http-method POST --api-version 7.1-preview --output none --in-file <(cat <<JSON
{
  "type": {"id": "8C6F20A7-A545-4486-9777-F762FAFE0D4D", "name": "Approval"},
  "settings": {"approvers": [{"id": "$APPROVER_ID"}], "executionOrder": "anyOrder", "minRequiredApprovers": 1,
               "instructions": "Approve to deploy the model version of this run to prod.",
               "blockedApprovers": [], "requesterCannotBeApprover": false},
  "resource": {"type": "environment", "id": "$PROD_ID", "name": "${ENVIRONMENTS[1]}"},
  "timeout": 43200
}
JSON
)
else
  echo "APPROVER not set: add the approval check by hand (README, 'Set up on Azure')."
fi
for environment in "${ENVIRONMENTS[@]}"; do
  env_id="$(az devops invoke --area environments --resource environments --route-parameters project="$PROJECT" \
    --http-method GET --api-version 7.1 --query "value[?name=='$environment'].id | [0]" -o tsv)"
  az devops invoke --area PipelinesChecks --resource configurations --route-parameters project="$PROJECT" \
    --http-method POST --api-version 7.1-preview --output none --in-file <(cat <<JSON
{
  "type": {"id": "2EF31AD6-BAA0-403A-8B45-2CBC9B4E5563", "name": "ExclusiveLock"},
  "settings": {},
  "resource": {"type": "environment", "id": "$env_id", "name": "$environment"},
  "timeout": 43200
}
JSON
)
done

echo "== 6. alerts"
az monitor action-group create --name "$ACTION_GROUP" --resource-group "$RESOURCE_GROUP" \
  --short-name "$(printf '%s' "$ACTION_GROUP" | cut -c1-12)" --output none \
  ${ALERT_EMAIL:+--action email owner "$ALERT_EMAIL"}
[ -n "$ALERT_EMAIL" ] || echo "alerts.email is empty in mlops.yaml: the action group reaches nobody until you add one."
ACTION_GROUP_ID="$(az monitor action-group show --name "$ACTION_GROUP" --resource-group "$RESOURCE_GROUP" --query id -o tsv)"
for endpoint in "${ENDPOINTS[@]}"; do
  if ! endpoint_id="$(az ml online-endpoint show --name "$endpoint" --resource-group "$RESOURCE_GROUP" \
      --workspace-name "$WORKSPACE" --query id -o tsv 2>/dev/null)" || [ -z "$endpoint_id" ]; then
    echo "endpoint $endpoint is not deployed yet: re-run this script after its first deploy to alert on it"
    continue
  fi
  az monitor metrics alert create --name "$endpoint-5xx" --resource-group "$RESOURCE_GROUP" --scopes "$endpoint_id" \
    --condition "total RequestsPerMinute > 0 where statusCodeClass includes 5xx" --window-size 5m \
    --evaluation-frequency 1m --severity 2 --action "$ACTION_GROUP_ID" --output none \
    --description "$endpoint answered with server errors (5xx)"
  az monitor metrics alert create --name "$endpoint-p99-latency" --resource-group "$RESOURCE_GROUP" \
    --scopes "$endpoint_id" --condition "avg RequestLatency_P99 > 1000" --window-size 15m \
    --evaluation-frequency 5m --severity 3 --action "$ACTION_GROUP_ID" --output none \
    --description "$endpoint: p99 latency above 1000 ms (smoke.max_latency_ms)"
done

echo "== 7. retraining on drift and new data"
az logic workflow create --name "$WORKFLOW" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" \
  --mi-system-assigned --output none --definition <(python3 - "$ORG" "$PROJECT" "$PIPELINE_ID" <<'PY'
import json, pathlib, sys
definition = json.loads(pathlib.Path("infra/azure/retrain-trigger.json").read_text())
org, project, pipeline = sys.argv[1:]
print(json.dumps({"definition": definition, "parameters": {
    "organization": {"value": org.rstrip("/")}, "project": {"value": project}, "pipelineId": {"value": int(pipeline)}}}))
PY
)
WORKFLOW_PRINCIPAL="$(az logic workflow show --name "$WORKFLOW" --resource-group "$RESOURCE_GROUP" --query identity.principalId -o tsv)"
# Its managed identity becomes an Azure DevOps user of the project (Contributors may queue pipelines).
az devops invoke --area MemberEntitlementManagement --resource ServicePrincipalEntitlements --http-method POST \
  --api-version 7.1-preview --output none --in-file <(printf '{"accessLevel": {"accountLicenseType": "stakeholder"}, "servicePrincipal": {"origin": "aad", "originId": "%s", "subjectKind": "servicePrincipal"}, "projectEntitlements": [{"group": {"groupType": "projectContributor"}, "projectRef": {"id": "%s"}}]}' \
  "$WORKFLOW_PRINCIPAL" "$(az devops project show --project "$PROJECT" --query id -o tsv)")
# The trigger URL carries a signature: it goes from Azure to Event Grid and is never written down.
TRIGGER_URL="$(az rest --method post --url "https://management.azure.com/subscriptions/$SUBSCRIPTION_ID/resourceGroups/$RESOURCE_GROUP/providers/Microsoft.Logic/workflows/$WORKFLOW/triggers/eventGrid/listCallbackUrl?api-version=2016-06-01" --query value -o tsv)"
az eventgrid system-topic create --name "$WORKSPACE-events" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" \
  --topic-type Microsoft.MachineLearningServices.Workspaces --source "$WORKSPACE_ID" --output none
# Azure ML's monitor tags a run that breached a threshold; the second filter keeps prod's monitor only.
az eventgrid system-topic event-subscription create --name "$WORKFLOW-drift" --resource-group "$RESOURCE_GROUP" \
  --system-topic-name "$WORKSPACE-events" --endpoint-type webhook --endpoint "$TRIGGER_URL" --output none \
  --included-event-types Microsoft.MachineLearningServices.RunStatusChanged \
  --advanced-filter data.RunTags.azureml_modelmonitor_threshold_breached StringContains \
    "has failed due to one or more features violating metric thresholds" \
  --advanced-filter data.RunTags.azureml_modelmonitor_threshold_breached StringContains "${PROD_MONITOR}_"
if [ -n "${DATA_ACCOUNT:-}" ] && [ -n "${DATA_CONTAINER:-}" ]; then
  DATA_ACCOUNT_ID="$(az storage account show --name "$DATA_ACCOUNT" --query id -o tsv)"
  az eventgrid system-topic create --name "$DATA_ACCOUNT-events" --resource-group "$RESOURCE_GROUP" \
    --location "$(az storage account show --name "$DATA_ACCOUNT" --query location -o tsv)" \
    --topic-type Microsoft.Storage.StorageAccounts --source "$DATA_ACCOUNT_ID" --output none
  az eventgrid system-topic event-subscription create --name "$WORKFLOW-data" --resource-group "$RESOURCE_GROUP" \
    --system-topic-name "$DATA_ACCOUNT-events" --endpoint-type webhook --endpoint "$TRIGGER_URL" --output none \
    --included-event-types Microsoft.Storage.BlobCreated \
    --subject-begins-with "/blobServices/default/containers/$DATA_CONTAINER/blobs/${DATA_PREFIX:-}"
else
  echo "DATA_ACCOUNT / DATA_CONTAINER not set: new data starts no run (the schedule still retrains on it)."
fi
echo "Done. Push to $BRANCH to run the pipeline."

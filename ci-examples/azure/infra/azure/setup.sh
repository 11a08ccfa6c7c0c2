#!/usr/bin/env bash
# One-time set-up of My ML Project on Azure, with the az CLI (+ extensions ml and azure-devops):
#   1. resource group, Azure ML workspace and the training cluster of mlops.yaml
#   2. a user-assigned managed identity with AzureML Data Scientist on the workspace
#   3. an Azure DevOps service connection that uses it by workload identity federation (no secret)
#   4. the environments my-ml-project-staging and my-ml-project-prod, and the pipeline
#   5. the approval check on my-ml-project-prod, when APPROVER is given
#
# Usage: ORG=https://dev.azure.com/<org> PROJECT=<project> [REPO=<repo>] [APPROVER=<email>] infra/azure/setup.sh
# Re-running is safe: whatever exists is kept.
set -euo pipefail

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

az extension add --upgrade --only-show-errors --name ml
az extension add --upgrade --only-show-errors --name azure-devops
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
echo "Done. Push to $BRANCH to run the pipeline."

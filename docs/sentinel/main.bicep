// falconet detections in Microsoft Sentinel: the custom table FalconetDetections_CL and a
// data collection rule (kind Direct) for the Azure Monitor Logs Ingestion API. The same
// resources as azuredeploy.json. The columns are exactly the record falconet's sentinel
// sink sends (tests/sinks/test_sentinel.py keeps this file, azuredeploy.json and the code
// equal); transformKql is `source`, so the table takes the records unchanged.
//
//   az deployment group create -g <resource group> -f main.bicep \
//     -p workspaceName=<workspace> principalId=<service principal object id>

@description('Log Analytics workspace of Microsoft Sentinel (in this resource group).')
param workspaceName string

@description('Region of the DCR: the workspace\'s region.')
param location string = resourceGroup().location

param dataCollectionRuleName string = 'dcr-falconet-detections'

@minValue(4)
@maxValue(730)
param retentionInDays int = 90

@description('Object id of the service principal falconet signs in as; it gets the Monitoring Metrics Publisher role on the DCR. Empty: assign the role yourself.')
param principalId string = ''

var tableName = 'FalconetDetections_CL'
var streamName = 'Custom-FalconetDetections'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

// the stream declaration: what falconet sends
var streamColumns = [
  {
    name: 'TimeGenerated'
    type: 'datetime'
  }
  {
    name: 'Rule'
    type: 'string'
  }
  {
    name: 'Priority'
    type: 'string'
  }
  {
    name: 'Severity'
    type: 'string'
  }
  {
    name: 'Output'
    type: 'string'
  }
  {
    name: 'Source'
    type: 'string'
  }
  {
    name: 'Hostname'
    type: 'string'
  }
  {
    name: 'Tags'
    type: 'dynamic'
  }
  {
    name: 'OutputFields'
    type: 'dynamic'
  }
  {
    name: 'DetectionId'
    type: 'string'
  }
  {
    name: 'EventId'
    type: 'string'
  }
  {
    name: 'Enrichment'
    type: 'dynamic'
  }
  {
    name: 'Dedup'
    type: 'dynamic'
  }
]

// the table: the tables API spells datetime "dateTime"
var tableColumns = [
  {
    name: 'TimeGenerated'
    type: 'dateTime'
  }
  {
    name: 'Rule'
    type: 'string'
  }
  {
    name: 'Priority'
    type: 'string'
  }
  {
    name: 'Severity'
    type: 'string'
  }
  {
    name: 'Output'
    type: 'string'
  }
  {
    name: 'Source'
    type: 'string'
  }
  {
    name: 'Hostname'
    type: 'string'
  }
  {
    name: 'Tags'
    type: 'dynamic'
  }
  {
    name: 'OutputFields'
    type: 'dynamic'
  }
  {
    name: 'DetectionId'
    type: 'string'
  }
  {
    name: 'EventId'
    type: 'string'
  }
  {
    name: 'Enrichment'
    type: 'dynamic'
  }
  {
    name: 'Dedup'
    type: 'dynamic'
  }
]

resource workspace 'Microsoft.OperationalInsights/workspaces@2022-10-01' existing = {
  name: workspaceName
}

resource table 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = {
  parent: workspace
  name: tableName
  properties: {
    plan: 'Analytics'
    retentionInDays: retentionInDays
    schema: {
      name: tableName
      description: 'Detections of falconet (Falco-compatible rules), sent by its sentinel sink.'
      columns: tableColumns
    }
  }
}

resource dcr 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: dataCollectionRuleName
  location: location
  kind: 'Direct'
  dependsOn: [
    table
  ]
  properties: {
    description: 'falconet sentinel sink -> FalconetDetections_CL'
    streamDeclarations: {
      '${streamName}': {
        columns: streamColumns
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'sentinelWorkspace'
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          streamName
        ]
        destinations: [
          'sentinelWorkspace'
        ]
        transformKql: 'source'
        outputStream: 'Custom-${tableName}'
      }
    ]
  }
}

resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(dcr.id, principalId, monitoringMetricsPublisher)
  scope: dcr
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// the sink's settings
output endpoint string = dcr.properties.endpoints.logsIngestion
output dcr_immutable_id string = dcr.properties.immutableId
output stream_name string = streamName

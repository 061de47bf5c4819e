"""Kubernetes' protobuf messages, as tables: each message's fields, their numbers and
what they hold.  Written by hand from the published ``generated.proto`` files of
k8s.io/api and k8s.io/apimachinery (field numbers never change there), for every kind
this API serves and every message those kinds hold.

One line a message: ``Name: field=number[flags][:type] ...``.  Flags: ``*`` repeated,
``?`` a Go pointer (a zero value is kept, not read as absent), ``^`` an embedded struct
whose fields JSON inlines into the parent.  Types: ``s`` string (the default), ``i``
integer (int32/int64 varints), ``b`` bool, ``y`` bytes (base64 in JSON), ``Time`` and
``MicroTime`` (RFC 3339 in JSON), ``Quantity``, ``IntOrString``, ``FieldsV1`` (JSON
kept as bytes), ``{s}`` ``{y}`` ``{Quantity}`` ``{strings}`` maps from strings, a
message name, or ``-`` for a message this server does not read (a body that sets it
is refused, naming it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["KINDS", "MESSAGES", "ProtoField", "members"]

_TABLES = """
Affinity: nodeAffinity=1:NodeAffinity podAffinity=2:PodAffinity podAntiAffinity=3:PodAntiAffinity
Capabilities: add=1*:s drop=2*:s
ClientIPConfig: timeoutSeconds=1?:i
ConfigMap: metadata=1:ObjectMeta immutable=4?:b data=2:{s} binaryData=3:{y}
ConfigMapEnvSource: localObjectReference=1^:LocalObjectReference optional=2?:b
ConfigMapKeySelector: localObjectReference=1^:LocalObjectReference key=2 optional=3?:b
ConfigMapProjection: localObjectReference=1^:LocalObjectReference items=2*:KeyToPath optional=4?:b
ConfigMapVolumeSource: localObjectReference=1^:LocalObjectReference items=2*:KeyToPath
    defaultMode=3?:i optional=4?:b
Container: name=1 image=2 command=3*:s args=4*:s workingDir=5 ports=6*:ContainerPort
    envFrom=19*:EnvFromSource env=7*:EnvVar resources=8:ResourceRequirements
    volumeMounts=9*:VolumeMount volumeDevices=21*:- livenessProbe=10:Probe readinessProbe=11:Probe
    startupProbe=22:Probe lifecycle=12:Lifecycle terminationMessagePath=13
    terminationMessagePolicy=20 imagePullPolicy=14 securityContext=15:SecurityContext stdin=16:b
    stdinOnce=17:b tty=18:b resizePolicy=23*:- restartPolicy=24? restartPolicyRules=25*:-
ContainerPort: name=1 hostPort=2:i containerPort=3:i protocol=4 hostIP=5
ContainerState: waiting=1:ContainerStateWaiting running=2:ContainerStateRunning
    terminated=3:ContainerStateTerminated
ContainerStateRunning: startedAt=1:Time
ContainerStateTerminated: exitCode=1:i signal=2:i reason=3 message=4 startedAt=5:Time
    finishedAt=6:Time containerID=7
ContainerStateWaiting: reason=1 message=2
ContainerStatus: name=1 state=2:ContainerState lastState=3:ContainerState ready=4:b restartCount=5:i
    image=6 imageID=7 containerID=8 started=9?:b
DaemonEndpoint: Port=1:i
DownwardAPIProjection: items=1*:DownwardAPIVolumeFile
DownwardAPIVolumeFile: path=1 fieldRef=2:ObjectFieldSelector
    resourceFieldRef=3:ResourceFieldSelector mode=4?:i
DownwardAPIVolumeSource: items=1*:DownwardAPIVolumeFile defaultMode=2?:i
EmptyDirVolumeSource: medium=1 sizeLimit=2:Quantity
EndpointAddress: ip=1 hostname=3 nodeName=4? targetRef=2:ObjectReference
EndpointPort: name=1 port=2:i protocol=3 appProtocol=4?
EndpointSubset: addresses=1*:EndpointAddress notReadyAddresses=2*:EndpointAddress
    ports=3*:EndpointPort
Endpoints: metadata=1:ObjectMeta subsets=2*:EndpointSubset
EnvFromSource: prefix=1 configMapRef=2:ConfigMapEnvSource secretRef=3:SecretEnvSource
EnvVar: name=1 value=2 valueFrom=3:EnvVarSource
EnvVarSource: fieldRef=1:ObjectFieldSelector resourceFieldRef=2:ResourceFieldSelector
    configMapKeyRef=3:ConfigMapKeySelector secretKeyRef=4:SecretKeySelector
EphemeralContainer: ephemeralContainerCommon=1^:Container targetContainerName=2
Event: metadata=1:ObjectMeta involvedObject=2:ObjectReference reason=3 message=4
    source=5:EventSource firstTimestamp=6:Time lastTimestamp=7:Time count=8:i type=9
    eventTime=10:MicroTime series=11:EventSeries action=12 related=13:ObjectReference
    reportingComponent=14 reportingInstance=15
EventSeries: count=1:i lastObservedTime=2:MicroTime
EventSource: component=1 host=2
EventsV1Event: metadata=1:ObjectMeta eventTime=2:MicroTime series=3:EventSeries
    reportingController=4 reportingInstance=5 action=6 reason=7 regarding=8:ObjectReference
    related=9:ObjectReference note=10 type=11 deprecatedSource=12:EventSource
    deprecatedFirstTimestamp=13:Time deprecatedLastTimestamp=14:Time deprecatedCount=15:i
ExecAction: command=1*:s
GCEPersistentDiskVolumeSource: pdName=1 fsType=2 partition=3:i readOnly=4:b
GRPCAction: port=1:i service=2?
HTTPGetAction: path=1 port=2:IntOrString host=3 scheme=4 httpHeaders=5*:HTTPHeader
HTTPHeader: name=1 value=2
HostAlias: ip=1 hostnames=2*:s
HostPathVolumeSource: path=1 type=2?
KeyToPath: key=1 path=2 mode=3?:i
Lifecycle: postStart=1:LifecycleHandler preStop=2:LifecycleHandler stopSignal=3?
LifecycleHandler: exec=1:ExecAction httpGet=2:HTTPGetAction tcpSocket=3:TCPSocketAction sleep=4:-
LoadBalancerIngress: ip=1 hostname=2 ipMode=3? ports=4*:-
LoadBalancerStatus: ingress=1*:LoadBalancerIngress
LocalObjectReference: name=1
LocalVolumeSource: path=1 fsType=2?
NFSVolumeSource: server=1 path=2 readOnly=3:b
Namespace: metadata=1:ObjectMeta spec=2:NamespaceSpec status=3:NamespaceStatus
NamespaceCondition: type=1 status=2 lastTransitionTime=4:Time reason=5 message=6
NamespaceSpec: finalizers=1*:s
NamespaceStatus: phase=1 conditions=2*:NamespaceCondition
Node: metadata=1:ObjectMeta spec=2:NodeSpec status=3:NodeStatus
NodeAddress: type=1 address=2
NodeAffinity: requiredDuringSchedulingIgnoredDuringExecution=1:NodeSelector
    preferredDuringSchedulingIgnoredDuringExecution=2*:PreferredSchedulingTerm
NodeCondition: type=1 status=2 lastHeartbeatTime=3:Time lastTransitionTime=4:Time reason=5 message=6
NodeDaemonEndpoints: kubeletEndpoint=1:DaemonEndpoint
NodeSelector: nodeSelectorTerms=1*:NodeSelectorTerm
NodeSelectorRequirement: key=1 operator=2 values=3*:s
NodeSelectorTerm: matchExpressions=1*:NodeSelectorRequirement matchFields=2*:NodeSelectorRequirement
NodeSpec: podCIDR=1 podCIDRs=7*:s providerID=3 unschedulable=4:b taints=5*:Taint configSource=6:-
    externalID=2
NodeStatus: capacity=1:{Quantity} allocatable=2:{Quantity} phase=3 conditions=4*:NodeCondition
    addresses=5*:NodeAddress daemonEndpoints=6:NodeDaemonEndpoints nodeInfo=7:NodeSystemInfo
    images=8*:- volumesInUse=9*:s volumesAttached=10*:- config=11:-
NodeSystemInfo: machineID=1 systemUUID=2 bootID=3 kernelVersion=4 osImage=5
    containerRuntimeVersion=6 kubeletVersion=7 kubeProxyVersion=8 operatingSystem=9 architecture=10
ObjectFieldSelector: apiVersion=1 fieldPath=2
ObjectReference: kind=1 namespace=2 name=3 uid=4 apiVersion=5 resourceVersion=6 fieldPath=7
PersistentVolume: metadata=1:ObjectMeta spec=2:PersistentVolumeSpec status=3:PersistentVolumeStatus
PersistentVolumeClaim: metadata=1:ObjectMeta spec=2:PersistentVolumeClaimSpec
    status=3:PersistentVolumeClaimStatus
PersistentVolumeClaimCondition: type=1 status=2 lastProbeTime=3:Time lastTransitionTime=4:Time
    reason=5 message=6
PersistentVolumeClaimSpec: accessModes=1*:s selector=4:LabelSelector
    resources=2:VolumeResourceRequirements volumeName=3 storageClassName=5? volumeMode=6?
    dataSource=7:- dataSourceRef=8:- volumeAttributesClassName=9?
PersistentVolumeClaimStatus: phase=1 accessModes=2*:s capacity=3:{Quantity}
    conditions=4*:PersistentVolumeClaimCondition
PersistentVolumeClaimVolumeSource: claimName=1 readOnly=2:b
PersistentVolumeSource: gcePersistentDisk=1:GCEPersistentDiskVolumeSource awsElasticBlockStore=2:-
    hostPath=3:HostPathVolumeSource glusterfs=4:- nfs=5:NFSVolumeSource rbd=6:- iscsi=7:- cinder=8:-
    cephfs=9:- fc=10:- flocker=11:- flexVolume=12:- azureFile=13:- vsphereVolume=14:- quobyte=15:-
    azureDisk=16:- photonPersistentDisk=17:- portworxVolume=18:- scaleIO=19:-
    local=20:LocalVolumeSource storageos=21:- csi=22:-
PersistentVolumeSpec: capacity=1:{Quantity} persistentVolumeSource=2^:PersistentVolumeSource
    accessModes=3*:s claimRef=4:ObjectReference persistentVolumeReclaimPolicy=5 storageClassName=6
    mountOptions=7*:s volumeMode=8? nodeAffinity=9:VolumeNodeAffinity volumeAttributesClassName=10?
PersistentVolumeStatus: phase=1 message=2 reason=3 lastPhaseTransitionTime=4:Time
Pod: metadata=1:ObjectMeta spec=2:PodSpec status=3:PodStatus
PodAffinity: requiredDuringSchedulingIgnoredDuringExecution=1*:PodAffinityTerm
    preferredDuringSchedulingIgnoredDuringExecution=2*:WeightedPodAffinityTerm
PodAffinityTerm: labelSelector=1:LabelSelector namespaces=2*:s topologyKey=3 namespaceSelector=4:-
    matchLabelKeys=5*:s mismatchLabelKeys=6*:s
PodAntiAffinity: requiredDuringSchedulingIgnoredDuringExecution=1*:PodAffinityTerm
    preferredDuringSchedulingIgnoredDuringExecution=2*:WeightedPodAffinityTerm
PodCondition: type=1 status=2 lastProbeTime=3:Time lastTransitionTime=4:Time reason=5 message=6
    observedGeneration=7:i
PodIP: ip=1
PodSecurityContext: seLinuxOptions=1:- windowsOptions=8:- runAsUser=2?:i runAsGroup=6?:i
    runAsNonRoot=3?:b supplementalGroups=4*:i fsGroup=5?:i sysctls=7*:Sysctl fsGroupChangePolicy=9?
    seccompProfile=10:SeccompProfile appArmorProfile=11:- supplementalGroupsPolicy=12?
    seLinuxChangePolicy=13?
PodSpec: volumes=1*:Volume initContainers=20*:Container containers=2*:Container
    ephemeralContainers=34*:EphemeralContainer restartPolicy=3 terminationGracePeriodSeconds=4?:i
    activeDeadlineSeconds=5?:i dnsPolicy=6 nodeSelector=7:{s} serviceAccountName=8 serviceAccount=9
    automountServiceAccountToken=21?:b nodeName=10 hostNetwork=11:b hostPID=12:b hostIPC=13:b
    shareProcessNamespace=27?:b securityContext=14:PodSecurityContext
    imagePullSecrets=15*:LocalObjectReference hostname=16 subdomain=17 affinity=18:Affinity
    schedulerName=19 tolerations=22*:Toleration hostAliases=23*:HostAlias priorityClassName=24
    priority=25?:i dnsConfig=26:- readinessGates=28*:- runtimeClassName=29? enableServiceLinks=30?:b
    preemptionPolicy=31? overhead=32:{Quantity} topologySpreadConstraints=33*:-
    setHostnameAsFQDN=35?:b os=36:- hostUsers=37?:b schedulingGates=38*:- resourceClaims=39*:-
    resources=40:- hostnameOverride=41?
PodStatus: phase=1 conditions=2*:PodCondition message=3 reason=4 nominatedNodeName=11 hostIP=5
    hostIPs=16*:PodIP podIP=6 podIPs=12*:PodIP startTime=7:Time
    initContainerStatuses=10*:ContainerStatus containerStatuses=8*:ContainerStatus qosClass=9
    ephemeralContainerStatuses=13*:ContainerStatus resize=14 resourceClaimStatuses=15*:-
    observedGeneration=17:i
PodTemplateSpec: metadata=1:ObjectMeta spec=2:PodSpec
PreferredSchedulingTerm: weight=1:i preference=2:NodeSelectorTerm
Probe: handler=1^:ProbeHandler initialDelaySeconds=2:i timeoutSeconds=3:i periodSeconds=4:i
    successThreshold=5:i failureThreshold=6:i terminationGracePeriodSeconds=7?:i
ProbeHandler: exec=1:ExecAction httpGet=2:HTTPGetAction tcpSocket=3:TCPSocketAction
    grpc=4:GRPCAction
ProjectedVolumeSource: sources=1*:VolumeProjection defaultMode=2?:i
ReplicationController: metadata=1:ObjectMeta spec=2:ReplicationControllerSpec
    status=3:ReplicationControllerStatus
ReplicationControllerCondition: type=1 status=2 lastTransitionTime=3:Time reason=4 message=5
ReplicationControllerSpec: replicas=1?:i minReadySeconds=4:i selector=2:{s}
    template=3:PodTemplateSpec
ReplicationControllerStatus: replicas=1:i fullyLabeledReplicas=2:i readyReplicas=4:i
    availableReplicas=5:i observedGeneration=3:i conditions=6*:ReplicationControllerCondition
ResourceFieldSelector: containerName=1 resource=2 divisor=3:Quantity
ResourceRequirements: limits=1:{Quantity} requests=2:{Quantity} claims=3*:-
SeccompProfile: type=1 localhostProfile=2?
Secret: metadata=1:ObjectMeta immutable=5?:b data=2:{y} stringData=4:{s} type=3
SecretEnvSource: localObjectReference=1^:LocalObjectReference optional=2?:b
SecretKeySelector: localObjectReference=1^:LocalObjectReference key=2 optional=3?:b
SecretProjection: localObjectReference=1^:LocalObjectReference items=2*:KeyToPath optional=4?:b
SecretVolumeSource: secretName=1 items=2*:KeyToPath defaultMode=3?:i optional=4?:b
SecurityContext: capabilities=1:Capabilities privileged=2?:b seLinuxOptions=3:- windowsOptions=10:-
    runAsUser=4?:i runAsGroup=8?:i runAsNonRoot=5?:b readOnlyRootFilesystem=6?:b
    allowPrivilegeEscalation=7?:b procMount=9? seccompProfile=11:SeccompProfile appArmorProfile=12:-
Service: metadata=1:ObjectMeta spec=2:ServiceSpec status=3:ServiceStatus
ServiceAccount: metadata=1:ObjectMeta secrets=2*:ObjectReference
    imagePullSecrets=3*:LocalObjectReference automountServiceAccountToken=4?:b
ServiceAccountTokenProjection: audience=1 expirationSeconds=2?:i path=3
ServicePort: name=1 protocol=2 appProtocol=6? port=3:i targetPort=4:IntOrString nodePort=5:i
ServiceSpec: ports=1*:ServicePort selector=2:{s} clusterIP=3 clusterIPs=18*:s type=4
    externalIPs=5*:s sessionAffinity=7 loadBalancerIP=8 loadBalancerSourceRanges=9*:s
    externalName=10 externalTrafficPolicy=11 healthCheckNodePort=12:i publishNotReadyAddresses=13:b
    sessionAffinityConfig=14:SessionAffinityConfig ipFamilies=19*:s ipFamilyPolicy=17?
    allocateLoadBalancerNodePorts=20?:b loadBalancerClass=21? internalTrafficPolicy=22?
    trafficDistribution=23?
ServiceStatus: loadBalancer=1:LoadBalancerStatus conditions=2*:-
SessionAffinityConfig: clientIP=1:ClientIPConfig
Sysctl: name=1 value=2
TCPSocketAction: port=1:IntOrString host=2
Taint: key=1 value=2 effect=3 timeAdded=4:Time
Toleration: key=1 operator=2 value=3 effect=4 tolerationSeconds=5?:i
TypedLocalObjectReference: apiGroup=1? kind=2 name=3
Volume: name=1 volumeSource=2^:VolumeSource
VolumeDevice: name=1 devicePath=2
VolumeMount: name=1 readOnly=2:b recursiveReadOnly=7? mountPath=3 subPath=4 mountPropagation=5?
    subPathExpr=6
VolumeNodeAffinity: required=1:NodeSelector
VolumeProjection: secret=1:SecretProjection downwardAPI=2:DownwardAPIProjection
    configMap=3:ConfigMapProjection serviceAccountToken=4:ServiceAccountTokenProjection
    clusterTrustBundle=5:- podCertificate=6:-
VolumeResourceRequirements: limits=1:{Quantity} requests=2:{Quantity}
VolumeSource: hostPath=1:HostPathVolumeSource emptyDir=2:EmptyDirVolumeSource
    gcePersistentDisk=3:GCEPersistentDiskVolumeSource awsElasticBlockStore=4:- gitRepo=5:-
    secret=6:SecretVolumeSource nfs=7:NFSVolumeSource iscsi=8:- glusterfs=9:-
    persistentVolumeClaim=10:PersistentVolumeClaimVolumeSource rbd=11:- flexVolume=12:- cinder=13:-
    cephfs=14:- flocker=15:- downwardAPI=16:DownwardAPIVolumeSource fc=17:- azureFile=18:-
    configMap=19:ConfigMapVolumeSource vsphereVolume=20:- quobyte=21:- azureDisk=22:-
    photonPersistentDisk=23:- projected=26:ProjectedVolumeSource portworxVolume=24:- scaleIO=25:-
    storageos=27:- csi=28:- ephemeral=29:- image=30:-
WeightedPodAffinityTerm: weight=1:i podAffinityTerm=2:PodAffinityTerm
ObjectMeta: name=1 generateName=2 namespace=3 selfLink=4 uid=5 resourceVersion=6 generation=7:i
    creationTimestamp=8:Time deletionTimestamp=9:Time deletionGracePeriodSeconds=10?:i labels=11:{s}
    annotations=12:{s} ownerReferences=13*:OwnerReference finalizers=14*:s
    managedFields=17*:ManagedFieldsEntry
OwnerReference: apiVersion=5 kind=1 name=3 uid=4 controller=6?:b blockOwnerDeletion=7?:b
LabelSelector: matchLabels=1:{s} matchExpressions=2*:LabelSelectorRequirement
LabelSelectorRequirement: key=1 operator=2 values=3*:s
ManagedFieldsEntry: manager=1 operation=2 apiVersion=3 time=4:Time fieldsType=6 fieldsV1=7:FieldsV1
    subresource=8
ListMeta: selfLink=1 resourceVersion=2 continue=3 remainingItemCount=4?:i
TypeMeta: apiVersion=1 kind=2
Unknown: typeMeta=1:TypeMeta raw=2:y contentEncoding=3 contentType=4
DeleteOptions: gracePeriodSeconds=1?:i preconditions=2:Preconditions orphanDependents=3?:b
    propagationPolicy=4? dryRun=5*:s ignoreStoreReadErrorWithClusterBreakingPotential=6?:b
Preconditions: uid=1? resourceVersion=2?
Status: metadata=1:ListMeta status=2 message=3 reason=4 details=5:StatusDetails code=6:i
StatusDetails: name=1 group=2 kind=3 uid=6 causes=4*:StatusCause retryAfterSeconds=5:i
StatusCause: reason=1 message=2 field=3
Deployment: metadata=1:ObjectMeta spec=2:DeploymentSpec status=3:DeploymentStatus
DeploymentCondition: type=1 status=2 lastUpdateTime=6:Time lastTransitionTime=7:Time reason=4
    message=5
DeploymentSpec: replicas=1?:i selector=2:LabelSelector template=3:PodTemplateSpec
    strategy=4:DeploymentStrategy minReadySeconds=5:i revisionHistoryLimit=6?:i paused=7:b
    progressDeadlineSeconds=9?:i
DeploymentStatus: observedGeneration=1:i replicas=2:i updatedReplicas=3:i readyReplicas=7:i
    availableReplicas=4:i unavailableReplicas=5:i conditions=6*:DeploymentCondition
    collisionCount=8?:i terminatingReplicas=9?:i
DeploymentStrategy: type=1 rollingUpdate=2:RollingUpdateDeployment
RollingUpdateDeployment: maxUnavailable=1:IntOrString maxSurge=2:IntOrString
ReplicaSet: metadata=1:ObjectMeta spec=2:ReplicaSetSpec status=3:ReplicaSetStatus
ReplicaSetCondition: type=1 status=2 lastTransitionTime=3:Time reason=4 message=5
ReplicaSetSpec: replicas=1?:i minReadySeconds=4:i selector=2:LabelSelector
    template=3:PodTemplateSpec
ReplicaSetStatus: replicas=1:i fullyLabeledReplicas=2:i readyReplicas=4:i availableReplicas=5:i
    observedGeneration=3:i conditions=6*:ReplicaSetCondition terminatingReplicas=7?:i
Role: metadata=1:ObjectMeta rules=2*:PolicyRule
ClusterRole: metadata=1:ObjectMeta rules=2*:PolicyRule aggregationRule=3:AggregationRule
AggregationRule: clusterRoleSelectors=1*:LabelSelector
PolicyRule: verbs=1*:s apiGroups=2*:s resources=3*:s resourceNames=4*:s nonResourceURLs=5*:s
RoleBinding: metadata=1:ObjectMeta subjects=2*:Subject roleRef=3:RoleRef
ClusterRoleBinding: metadata=1:ObjectMeta subjects=2*:Subject roleRef=3:RoleRef
Subject: kind=1 apiGroup=2 name=3 namespace=4
RoleRef: apiGroup=1 kind=2 name=3
Ingress: metadata=1:ObjectMeta spec=2:IngressSpec status=3:IngressStatus
IngressSpec: ingressClassName=4? defaultBackend=1:IngressBackend tls=2*:IngressTLS
    rules=3*:IngressRule
IngressBackend: service=4:IngressServiceBackend resource=3:TypedLocalObjectReference
IngressServiceBackend: name=1 port=2:ServiceBackendPort
ServiceBackendPort: name=1 number=2:i
IngressTLS: hosts=1*:s secretName=2
IngressRule: host=1 ingressRuleValue=2^:IngressRuleValue
IngressRuleValue: http=1:HTTPIngressRuleValue
HTTPIngressRuleValue: paths=1*:HTTPIngressPath
HTTPIngressPath: path=1 backend=2:IngressBackend pathType=3?
IngressStatus: loadBalancer=1:LoadBalancerStatus
EndpointSlice: metadata=1:ObjectMeta addressType=4 endpoints=2*:SliceEndpoint
    ports=3*:SliceEndpointPort
SliceEndpoint: addresses=1*:s conditions=2:SliceEndpointConditions hostname=3?
    targetRef=4:ObjectReference deprecatedTopology=5:{s} nodeName=6? zone=7?
    hints=8:SliceEndpointHints
SliceEndpointConditions: ready=1?:b serving=2?:b terminating=3?:b
SliceEndpointHints: forZones=1*:SliceForZone forNodes=2*:SliceForNode
SliceEndpointPort: name=1? protocol=2? port=3?:i appProtocol=4?
SliceForZone: name=1
SliceForNode: name=1
Scale: metadata=1:ObjectMeta spec=2:ScaleSpec status=3:ScaleStatus
ScaleSpec: replicas=1:i
ScaleStatus: replicas=1:i selector=2
Eviction: metadata=1:ObjectMeta deleteOptions=2:DeleteOptions
ResourceAttributes: namespace=1 verb=2 group=3 version=4 resource=5 subresource=6 name=7
    fieldSelector=8:- labelSelector=9:-
NonResourceAttributes: path=1 verb=2
SelfSubjectAccessReviewSpec: resourceAttributes=1:ResourceAttributes
    nonResourceAttributes=2:NonResourceAttributes
SubjectAccessReviewSpec: resourceAttributes=1:ResourceAttributes
    nonResourceAttributes=2:NonResourceAttributes user=3 groups=4*:s extra=5:{strings} uid=6
SelfSubjectRulesReviewSpec: namespace=1
SelfSubjectAccessReview: metadata=1:ObjectMeta spec=2:SelfSubjectAccessReviewSpec status=3:-
SubjectAccessReview: metadata=1:ObjectMeta spec=2:SubjectAccessReviewSpec status=3:-
LocalSubjectAccessReview: metadata=1:ObjectMeta spec=2:SubjectAccessReviewSpec status=3:-
SelfSubjectRulesReview: metadata=1:ObjectMeta spec=2:SelfSubjectRulesReviewSpec status=3:-
SelfSubjectReview: metadata=1:ObjectMeta status=2:-
BoundObjectReference: kind=1 apiVersion=2 name=3 uid=4
TokenRequestSpec: audiences=1*:s boundObjectRef=3:BoundObjectReference expirationSeconds=4?:i
TokenRequest: metadata=1:ObjectMeta spec=2:TokenRequestSpec status=3:-
"""


@dataclass(frozen=True)
class ProtoField:
    name: str  # the JSON name
    number: int
    kind: str
    repeated: bool = False
    pointer: bool = False
    inline: bool = False


def _parse(text: str) -> dict[str, dict[int, ProtoField]]:
    out: dict[str, dict[int, ProtoField]] = {}
    joined = text.strip().replace("\n    ", " ")  # a line that starts indented goes on
    for line in joined.splitlines():
        message, _, rest = line.partition(":")
        fields: dict[int, ProtoField] = {}
        for token in rest.split():
            spec, _, kind = token.partition(":")
            name, _, num = spec.partition("=")
            flags = num.lstrip("0123456789")
            number = int(num[:len(num) - len(flags)])
            if number in fields:
                raise ValueError(f"{message}: field number {number} twice")
            fields[number] = ProtoField(name, number, kind or "s", "*" in flags, "?" in flags,
                                        "^" in flags)
        if message in out:
            raise ValueError(f"message {message} twice")
        out[message] = fields
    return out


MESSAGES = _parse(_TABLES)


@functools.cache
def members(message: str) -> dict[str, ProtoField]:
    """A message's fields by JSON name, its inline (embedded) messages' fields flattened
    in, as JSON has them."""
    out: dict[str, ProtoField] = {}
    for f in MESSAGES[message].values():
        if f.inline:
            out.update(members(f.kind))
        else:
            out[f.name] = f
    return out

# The kinds read and written as protobuf: (apiVersion, kind) -> message.
KINDS: dict[tuple[str, str], str] = {
    **{("v1", k): k for k in (
        "Pod", "Service", "Endpoints", "ConfigMap", "Secret", "ServiceAccount", "Event",
        "Namespace", "Node", "PersistentVolume", "PersistentVolumeClaim",
        "ReplicationController")},
    **{("apps/v1", k): k for k in ("Deployment", "ReplicaSet")},
    **{("rbac.authorization.k8s.io/v1", k): k for k in (
        "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")},
    ("networking.k8s.io/v1", "Ingress"): "Ingress",
    ("discovery.k8s.io/v1", "EndpointSlice"): "EndpointSlice",
    ("events.k8s.io/v1", "Event"): "EventsV1Event",
    ("autoscaling/v1", "Scale"): "Scale",
    ("policy/v1", "Eviction"): "Eviction",
    **{(v, "DeleteOptions"): "DeleteOptions" for v in ("v1", "meta.k8s.io/v1")},
    **{("authorization.k8s.io/v1", k): k for k in (
        "SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview",
        "SelfSubjectRulesReview")},
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
}

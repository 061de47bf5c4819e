"""What the fields of the kinds mean, for ``kubectl explain`` (the OpenAPI documents'
descriptions): ``"Type.field"``, or ``"*.field"`` for a field every type that has it
shares; ``"Type"`` alone describes the type itself (``kubectl explain pods`` shows it
first).  Written for this project, in its own words; where this server does not act on
a field, the text says so."""

from __future__ import annotations

__all__ = ["DESCRIPTIONS", "TYPES", "describe"]

TYPES: dict[str, str] = {
    # --- the kinds served -----------------------------------------------------------------
    "Pod": "A group of containers that share a network namespace (one IP), volumes and a "
           "lifetime, scheduled to one node whose agent runs them. The smallest thing "
           "deployed; usually made by a controller from a template.",
    "ReplicationController": "Keeps a number of copies of a pod template running, finding "
                             "its pods by an equality selector: the oldest controller, "
                             "replaced by ReplicaSets and Deployments.",
    "ReplicaSet": "Keeps a number of copies of a pod template running, finding its pods "
                  "by a label selector. Usually owned by a Deployment, one per revision.",
    "Deployment": "Declarative updates for pods: each change of its template rolls out a "
                  "new ReplicaSet and scales the old ones down, keeping a history to roll "
                  "back to.",
    "Service": "A stable virtual IP (ClusterIP) and DNS name in front of the pods its "
               "selector picks; connections are spread over the ready ones by each node's "
               "service rules.",
    "Endpoints": "The ready and not-ready addresses behind a Service, kept by the endpoints "
                 "controller (or by hand for a Service without a selector).",
    "EndpointSlice": "A slice of a Service's endpoints, at most 100 each, with their "
                     "ready, serving and terminating conditions; what the service rules "
                     "are made from.",
    "ConfigMap": "Non-secret configuration as key/value pairs, for pods to read as "
                 "environment variables or as files in a volume.",
    "Secret": "Secret data (passwords, tokens, keys) as key/value pairs, base64 in JSON; "
              "given to pods as environment variables or files, and encrypted at rest "
              "when the cluster is set to.",
    "Namespace": "A scope for names: most objects live in one, and deleting it deletes "
                 "everything in it.",
    "Node": "A machine running this project's agent, which registers it, reports its "
            "capacity, conditions and addresses, and runs the pods scheduled to it.",
    "Event": "A report of something that happened to an object (scheduled, pulled, "
             "started, unhealthy, scaled), shown by kubectl describe; kept for an hour.",
    "Ingress": "HTTP routing rules from host names and paths to Services, served by an "
               "ingress controller.",
    "PersistentVolume": "A piece of storage in the cluster, made by an administrator or "
                        "a provisioner, that a claim binds to.",
    "PersistentVolumeClaim": "A request for storage by size and access mode; bound to a "
                             "PersistentVolume, and mounted by pods through it.",
    "ServiceAccount": "An identity for processes in pods: its tokens authenticate them to "
                      "the API, where roles say what it may do.",
    "Role": "A set of permissions (verbs on resources) within one namespace, granted by a "
            "RoleBinding.",
    "ClusterRole": "A set of permissions (verbs on resources, or non-resource URLs) for "
                   "the whole cluster or, through a RoleBinding, one namespace.",
    "RoleBinding": "Grants a Role's or ClusterRole's permissions to users, groups or "
                   "service accounts within one namespace.",
    "ClusterRoleBinding": "Grants a ClusterRole's permissions to users, groups or service "
                          "accounts in the whole cluster.",
    # --- what they hold -------------------------------------------------------------------
    "ObjectMeta": "Metadata every persisted object has: its name and namespace, labels "
                  "and annotations, owners, and what the server sets (uid, "
                  "resourceVersion, timestamps, managed fields).",
    "PodSpec": "What a pod is to run: its containers, volumes, restart policy, scheduling "
               "constraints and security settings.",
    "PodStatus": "What the node's agent observed of the pod: its phase, conditions, IPs "
                 "and each container's state. It may lag behind the truth.",
    "PodTemplateSpec": "The pod a controller makes: labels and other metadata, and a pod "
                       "spec.",
    "Container": "One process (image and command) to run in a pod, with its ports, "
                 "environment, resources, volume mounts and probes.",
    "ContainerStatus": "The state of one container of the pod: waiting, running or "
                       "terminated, its restarts and readiness.",
    "ContainerState": "One of waiting, running or terminated; none set means waiting.",
    "Probe": "A check the node's agent runs against a container (exec, HTTP GET, TCP or "
             "gRPC) on a period; enough failures in a row change the container's state.",
    "Volume": "A named directory the pod's containers may mount: an emptyDir, hostPath, "
              "ConfigMap, Secret, projected set, claim or other source.",
    "VolumeMount": "Where a volume (or a path in it) appears in a container's file tree.",
    "ResourceRequirements": "Compute resources a container asks for (requests: used to "
                            "schedule) and may not exceed (limits: enforced by its "
                            "cgroup).",
    "SecurityContext": "Privileges a container runs with: user and group, capabilities, "
                       "privilege escalation, read-only root, seccomp.",
    "PodSecurityContext": "Privileges every container of the pod gets unless its own "
                          "securityContext says otherwise.",
    "EnvVar": "An environment variable of a container, given as a value or read from a "
              "field, resource, ConfigMap or Secret.",
    "ContainerPort": "A network port the container listens on. Informational: every "
                     "port of the pod's IP is reachable whether listed or not.",
    "Affinity": "Node affinity, and pod affinity and anti-affinity: where the scheduler "
                "may or prefers to place the pod.",
    "Toleration": "Lets the pod be scheduled (or keep running) on nodes with a matching "
                  "taint.",
    "DeploymentSpec": "What the Deployment keeps: a number of replicas of a pod template, "
                      "and how a change rolls out.",
    "DeploymentStatus": "How far the rollout got: the replicas updated, ready and "
                        "available, and the conditions Progressing and Available.",
    "DeploymentStrategy": "How a new template replaces the old pods: RollingUpdate or "
                          "Recreate.",
    "ReplicaSetSpec": "What the ReplicaSet keeps: a number of replicas of a pod template, "
                      "found by a selector.",
    "ReplicaSetStatus": "The replicas observed: running, fully labeled, ready and "
                        "available.",
    "ReplicationControllerSpec": "What the ReplicationController keeps: a number of "
                                 "replicas of a pod template, found by a selector.",
    "ReplicationControllerStatus": "The replicas observed: running, fully labeled, ready "
                                   "and available.",
    "ServiceSpec": "How the Service is reached (type, ClusterIP, ports) and which pods "
                   "stand behind it (selector).",
    "ServiceStatus": "The load balancer's ingress points, for type LoadBalancer.",
    "ServicePort": "One port the Service answers on and the pods' port it goes to.",
    "NodeSpec": "How the node is to be used: its pod CIDR, taints, and whether new pods "
                "may be scheduled to it.",
    "NodeStatus": "What the node's agent reports: capacity, allocatable resources, "
                  "conditions, addresses and system information.",
    "LabelSelector": "Picks objects by their labels: every matchLabels pair and every "
                     "matchExpressions requirement must hold. An empty selector picks "
                     "every object.",
    "OwnerReference": "An object this one depends on: when every owner is gone, the "
                      "garbage collector deletes this one.",
    "ObjectReference": "Points at another object by kind, namespace and name (and "
                       "optionally uid, resourceVersion and field).",
    "IngressSpec": "The Ingress's rules, TLS settings and default backend.",
    "PersistentVolumeClaimSpec": "The storage asked for: size, access modes, storage "
                                 "class, and optionally the volume to bind.",
    "PolicyRule": "Verbs allowed on resources of API groups (optionally by name), or on "
                  "non-resource URLs.",
    "Subject": "Who a binding grants to: a User, Group or ServiceAccount.",
    "RoleRef": "The Role or ClusterRole a binding grants.",
}

DESCRIPTIONS: dict[str, str] = {
    # --- every object ---------------------------------------------------------------------
    "*.apiVersion": "The version of the schema this object is in (group/version, or v1 "
                    "for the core group). Servers convert known versions and refuse others.",
    "*.kind": "The kind of object this is, in CamelCase: what the REST resource holds.",
    "*.metadata": "Standard object metadata: name, namespace, labels, annotations, owners "
                  "and the fields the server sets (uid, resourceVersion, timestamps).",
    "*.spec": "The desired state: what the user asks for.",
    "*.status": "The observed state, written by the system (a controller, the node's "
                "agent). Read-only for users; it may lag behind the spec.",
    # --- ObjectMeta -------------------------------------------------------------------------
    "ObjectMeta.name": "Unique within a namespace (or the cluster, for cluster-scoped "
                       "kinds). Set at creation and never changed.",
    "ObjectMeta.generateName": "A prefix from which the server makes a unique name when "
                               "name is empty: five random characters are added.",
    "ObjectMeta.namespace": "The namespace the object lives in; empty for cluster-scoped "
                            "kinds. Defaults to the request's namespace.",
    "ObjectMeta.uid": "Unique for all time in this cluster: set by the server at creation.",
    "ObjectMeta.resourceVersion": "The version of this object in the store: opaque to "
                                  "clients, sent back on updates for optimistic concurrency "
                                  "and used to resume watches.",
    "ObjectMeta.generation": "A number the server increases each time the desired state "
                             "(spec) changes.",
    "ObjectMeta.creationTimestamp": "When the server created the object (UTC, RFC 3339).",
    "ObjectMeta.deletionTimestamp": "Set when deletion was asked and the object waits for "
                                    "its finalizers or its grace period; then it goes.",
    "ObjectMeta.deletionGracePeriodSeconds": "The seconds allowed for a graceful "
                                             "deletion; set with deletionTimestamp.",
    "ObjectMeta.labels": "Key/value pairs that selectors match: Services, ReplicaSets and "
                         "Deployments find their pods by them.",
    "ObjectMeta.annotations": "Key/value pairs for tools and people; not queryable.",
    "ObjectMeta.ownerReferences": "The objects this one depends on. When every owner is "
                                  "gone, the garbage collector deletes this object.",
    "ObjectMeta.finalizers": "Names that must all be removed before a deleted object "
                             "goes from the store.",
    "ObjectMeta.managedFields": "Which field manager owns which fields, as server-side "
                                "apply keeps it. Mostly for the server's use.",
    # --- Pod --------------------------------------------------------------------------------
    "PodSpec.containers": "The containers of the pod: at least one. They start together "
                          "once the init containers finished, and share the pod's network.",
    "PodSpec.initContainers": "Containers run one after another, each to completion, "
                              "before the containers start.",
    "PodSpec.ephemeralContainers": "Containers added to a running pod to debug it "
                                   "(kubectl debug), through the ephemeralcontainers "
                                   "subresource; never restarted.",
    "PodSpec.volumes": "Volumes the pod's containers can mount.",
    "PodSpec.restartPolicy": "Always, OnFailure or Never: whether a container that exits "
                             "is started again. Default Always.",
    "PodSpec.terminationGracePeriodSeconds": "Seconds between the stop signal (SIGTERM) "
                                             "and the kill (SIGKILL) when the pod is "
                                             "deleted. Default 30.",
    "PodSpec.activeDeadlineSeconds": "Seconds the pod may run, from its start, before it "
                                     "is failed.",
    "PodSpec.dnsPolicy": "How the pod's /etc/resolv.conf is made: ClusterFirst (the "
                         "cluster's DNS first, the default), Default (the node's), "
                         "ClusterFirstWithHostNet or None.",
    "PodSpec.nodeSelector": "Labels a node must have for the pod to be scheduled there.",
    "PodSpec.serviceAccountName": "The ServiceAccount the pod runs as: its token is "
                                  "mounted for the API. Default 'default'.",
    "PodSpec.serviceAccount": "Deprecated spelling of serviceAccountName.",
    "PodSpec.automountServiceAccountToken": "Whether the ServiceAccount's token is mounted "
                                            "in the containers.",
    "PodSpec.nodeName": "The node the pod runs on: set by the scheduler (pods/binding), or "
                        "by the user to skip scheduling.",
    "PodSpec.hostNetwork": "Use the node's network namespace instead of the pod's own.",
    "PodSpec.hostPID": "Use the node's PID namespace.",
    "PodSpec.hostIPC": "Use the node's IPC namespace.",
    "PodSpec.shareProcessNamespace": "One PID namespace for all the pod's containers, so "
                                     "they see each other's processes.",
    "PodSpec.securityContext": "Security settings for every container of the pod (user, "
                               "group, fsGroup, seccomp, sysctls).",
    "PodSpec.imagePullSecrets": "Secrets holding registry credentials for pulling the "
                                "images.",
    "PodSpec.hostname": "The pod's host name; default the pod's name.",
    "PodSpec.subdomain": "With hostname, gives the pod the DNS name "
                         "hostname.subdomain.namespace.svc.",
    "PodSpec.affinity": "Node affinity, and pod affinity and anti-affinity: where the "
                        "scheduler may or prefers to place the pod.",
    "PodSpec.schedulerName": "The scheduler that places the pod. Default "
                             "default-scheduler.",
    "PodSpec.tolerations": "Taints of nodes the pod tolerates (to be scheduled there, or to "
                           "stay when the taint is NoExecute, for tolerationSeconds).",
    "PodSpec.hostAliases": "Entries added to the pod's /etc/hosts.",
    "PodSpec.priorityClassName": "The PriorityClass that gives the pod its priority.",
    "PodSpec.priority": "The pod's priority, from its PriorityClass: higher goes first.",
    "PodSpec.enableServiceLinks": "Whether the Services of the namespace are given to the "
                                  "containers as environment variables (docker links "
                                  "style). Default true.",
    "PodSpec.preemptionPolicy": "Whether the pod may preempt pods of lower priority. "
                                "Default PreemptLowerPriority.",
    "PodSpec.runtimeClassName": "The RuntimeClass to run the pod with.",
    "PodSpec.overhead": "Resources the pod's sandbox uses besides its containers.",
    "PodSpec.setHostnameAsFQDN": "Make the pod's host name its fully qualified name.",
    "PodSpec.hostUsers": "false: the pod gets its own user namespace.",
    "Pod.spec": "What the pod runs: its containers, volumes and scheduling constraints.",
    "Pod.status": "The pod's phase, conditions, IPs and each container's state, as its "
                  "node's agent reports them.",
    "PodStatus.phase": "Pending, Running, Succeeded, Failed or Unknown: where the pod is in "
                       "its life.",
    "PodStatus.conditions": "PodScheduled, Initialized, ContainersReady and Ready, each "
                            "True or False with the time it last changed.",
    "PodStatus.podIP": "The pod's address on the pod network; empty until it has one.",
    "PodStatus.podIPs": "The pod's addresses, one per IP family.",
    "PodStatus.hostIP": "The address of the node the pod runs on.",
    "PodStatus.startTime": "When the node's agent accepted the pod.",
    "PodStatus.containerStatuses": "The state of each container: waiting, running or "
                                   "terminated, its restarts and readiness.",
    "PodStatus.qosClass": "Guaranteed, Burstable or BestEffort, from the containers' "
                          "requests and limits.",
    # --- Container --------------------------------------------------------------------------
    "Container.name": "The container's name, unique in the pod (a DNS label).",
    "Container.image": "The image to run, as the registry names it (name:tag or "
                       "name@digest).",
    "Container.command": "The entrypoint, instead of the image's ENTRYPOINT. Not run in a "
                         "shell; $(VAR) is expanded from the container's environment.",
    "Container.args": "The entrypoint's arguments, instead of the image's CMD; $(VAR) is "
                      "expanded.",
    "Container.workingDir": "The working directory; default the image's.",
    "Container.ports": "Ports the container listens on. Informational, except that a "
                       "named port can be a probe's or a Service's target.",
    "Container.env": "Environment variables, set in order; a value can come from a "
                     "ConfigMap, a Secret or a field of the pod.",
    "Container.envFrom": "Every key of a ConfigMap or Secret as an environment variable.",
    "Container.resources": "CPU and memory requests (what the scheduler reserves) and "
                           "limits (what the cgroup enforces).",
    "Container.volumeMounts": "The pod's volumes mounted into this container's filesystem.",
    "Container.livenessProbe": "A check that, failing failureThreshold times, restarts "
                               "the container.",
    "Container.readinessProbe": "A check that, failing, takes the pod out of its Services' "
                                "endpoints until it passes again.",
    "Container.startupProbe": "A check that must pass before the liveness and readiness "
                              "probes start: for slow starters.",
    "Container.lifecycle": "Actions run right after the container starts (postStart) and "
                           "before it is stopped (preStop).",
    "Container.terminationMessagePath": "A file whose contents become the container's "
                                        "termination message. Default "
                                        "/dev/termination-log.",
    "Container.terminationMessagePolicy": "File (the message file only, the default) or "
                                          "FallbackToLogsOnError.",
    "Container.imagePullPolicy": "Always, IfNotPresent or Never. Default Always for the "
                                 "latest tag (or none), else IfNotPresent.",
    "Container.securityContext": "Security settings of this container: user, "
                                 "capabilities, privileged, read-only root, seccomp.",
    "Container.stdin": "Keep a stdin open for the container's process (kubectl attach "
                       "writes to it).",
    "Container.stdinOnce": "Close the stdin after the first attach ends.",
    "Container.tty": "Give the container a terminal (with stdin: kubectl run -it). This "
                     "server gives it pipes, not a terminal.",
    "ContainerPort.name": "A name for the port (an IANA service name), for probes and "
                          "Services to refer to.",
    "ContainerPort.containerPort": "The port number the container listens on.",
    "ContainerPort.hostPort": "A port on the node forwarded to this one.",
    "ContainerPort.hostIP": "The node address hostPort binds to.",
    "ContainerPort.protocol": "TCP, UDP or SCTP. Default TCP.",
    "EnvVar.name": "The variable's name.",
    "EnvVar.value": "The value; $(VAR) refers to earlier variables.",
    "EnvVar.valueFrom": "Where the value comes from instead: a ConfigMap or Secret key, a "
                        "field of the pod, or a container's resource.",
    "ResourceRequirements.requests": "What the container needs: the scheduler places the "
                                     "pod where the node has it left (cpu in cores or "
                                     "millicores, memory in bytes).",
    "ResourceRequirements.limits": "The most the container may use: memory over the limit "
                                   "is killed, cpu is throttled.",
    "VolumeMount.name": "The name of one of the pod's volumes.",
    "VolumeMount.mountPath": "Where in the container the volume appears.",
    "VolumeMount.readOnly": "Mount it read-only.",
    "VolumeMount.subPath": "Mount this path inside the volume instead of its root.",
    "Probe.httpGet": "An HTTP GET that passes with a status from 200 to 399.",
    "Probe.tcpSocket": "A TCP connection that passes when it opens.",
    "Probe.exec": "A command run in the container that passes when it exits 0.",
    "Probe.grpc": "A gRPC health check that passes when it answers SERVING.",
    "Probe.initialDelaySeconds": "Seconds after the container started before the first "
                                 "probe.",
    "Probe.periodSeconds": "Seconds between probes. Default 10.",
    "Probe.timeoutSeconds": "Seconds a probe may take. Default 1.",
    "Probe.successThreshold": "Passes in a row to count as passing after a failure. "
                              "Default 1 (and must be 1 for liveness and startup).",
    "Probe.failureThreshold": "Failures in a row to count as failing. Default 3.",
    "Probe.terminationGracePeriodSeconds": "The grace period when this probe's failure "
                                           "kills the container, instead of the pod's.",
    # --- Deployment and ReplicaSet ------------------------------------------------------------
    "DeploymentSpec.replicas": "How many pods to run. Default 1.",
    "DeploymentSpec.selector": "The labels of the pods this Deployment manages: must match "
                               "the template's labels, and cannot change.",
    "DeploymentSpec.template": "The pod each replica is made from; a change to it rolls "
                               "out a new ReplicaSet.",
    "DeploymentSpec.strategy": "How a new template replaces the old pods: RollingUpdate "
                               "(the default, within maxSurge and maxUnavailable) or "
                               "Recreate.",
    "DeploymentSpec.minReadySeconds": "Seconds a new pod must be ready before it counts as "
                                      "available.",
    "DeploymentSpec.revisionHistoryLimit": "Old ReplicaSets kept for rollback. Default 10.",
    "DeploymentSpec.paused": "A paused Deployment rolls out no template change until "
                             "resumed.",
    "DeploymentSpec.progressDeadlineSeconds": "Seconds without progress before the rollout "
                                              "is reported failed (ProgressDeadline"
                                              "Exceeded). Default 600.",
    "DeploymentStrategy.type": "RollingUpdate or Recreate.",
    "DeploymentStrategy.rollingUpdate": "maxSurge (pods over replicas) and maxUnavailable "
                                        "(pods under replicas) during a rollout, numbers or "
                                        "percentages. Default 25% each.",
    "ReplicaSetSpec.replicas": "How many pods to run. Default 1.",
    "ReplicaSetSpec.selector": "The labels of the pods this ReplicaSet counts: must match "
                               "the template's labels.",
    "ReplicaSetSpec.template": "The pod made when there are too few.",
    "ReplicaSetSpec.minReadySeconds": "Seconds a new pod must be ready before it counts as "
                                      "available.",
    # --- Service ----------------------------------------------------------------------------
    "ServiceSpec.type": "ClusterIP (a virtual address inside the cluster, the default), "
                        "NodePort (also a port on every node), LoadBalancer or "
                        "ExternalName (a DNS alias).",
    "ServiceSpec.selector": "The labels of the pods that serve this Service: their "
                            "addresses become its endpoints. Without a selector the "
                            "Endpoints are the user's to write.",
    "ServiceSpec.ports": "The ports the Service exposes and the pods' ports they go to.",
    "ServiceSpec.clusterIP": "The Service's virtual address: given from the service range "
                             "unless set, 'None' for a headless Service. Cannot change.",
    "ServiceSpec.clusterIPs": "The Service's virtual addresses, one per IP family; the "
                              "first is clusterIP.",
    "ServiceSpec.externalIPs": "Addresses of nodes at which the Service also answers.",
    "ServiceSpec.sessionAffinity": "ClientIP: each client's connections go to the same pod "
                                   "(for sessionAffinityConfig's timeout). Default None.",
    "ServiceSpec.externalName": "The DNS name an ExternalName Service is an alias of.",
    "ServiceSpec.externalTrafficPolicy": "Cluster (any ready pod, the default) or Local "
                                         "(only pods on the node the traffic came to).",
    "ServiceSpec.internalTrafficPolicy": "Cluster (the default) or Local, for traffic from "
                                         "inside the cluster.",
    "ServiceSpec.publishNotReadyAddresses": "List pods in the endpoints before they are "
                                            "ready.",
    "ServiceSpec.ipFamilies": "IPv4 and/or IPv6, in order.",
    "ServiceSpec.ipFamilyPolicy": "SingleStack, PreferDualStack or RequireDualStack.",
    "ServicePort.name": "The port's name: needed when there are several.",
    "ServicePort.port": "The port the Service answers on.",
    "ServicePort.targetPort": "The pods' port, by number or by the name of a container "
                              "port. Default the same as port.",
    "ServicePort.nodePort": "With type NodePort: the port on every node (30000-32767), "
                            "given unless set.",
    "ServicePort.protocol": "TCP, UDP or SCTP. Default TCP.",
    "ServicePort.appProtocol": "The application protocol (a hint for proxies).",
}

DESCRIPTIONS.update({
    # --- conditions, wherever they are ----------------------------------------------------
    "*.conditions": "The latest observations of the object's state, one per condition "
                    "type.",
    "*.observedGeneration": "The metadata.generation the controller last acted on: the "
                            "status is current when it equals the object's generation.",
    "*.lastTransitionTime": "When the condition last changed from one status to another.",
    "*.lastUpdateTime": "When the condition was last written.",
    "*.lastHeartbeatTime": "When the node's agent last reported this condition.",
    "*.lastProbeTime": "When the condition was last probed.",
    "*.reason": "A one-word, CamelCase reason for the last change or the current state.",
    "*.message": "A human-readable explanation, with details.",
    "*.selfLink": "Deprecated and left empty, as Kubernetes has since 1.20.",
    "*.finalizers": "Names of what must clean up before the object is deleted.",
    "PodCondition.type": "PodScheduled, Initialized, ContainersReady or Ready.",
    "PodCondition.status": "True, False or Unknown.",
    "NodeCondition.type": "Ready, MemoryPressure, DiskPressure, PIDPressure or "
                          "NetworkUnavailable.",
    "NodeCondition.status": "True, False or Unknown (the node's agent stopped reporting).",
    "DeploymentCondition.type": "Available (enough replicas ready), Progressing (the "
                                "rollout moves) or ReplicaFailure.",
    "DeploymentCondition.status": "True, False or Unknown.",
    "ReplicaSetCondition.type": "ReplicaFailure: pods could not be created or deleted.",
    "ReplicaSetCondition.status": "True, False or Unknown.",
    # --- statuses of the controllers ------------------------------------------------------
    "DeploymentStatus.replicas": "Pods of this Deployment (of every revision) that exist.",
    "DeploymentStatus.updatedReplicas": "Pods of the current template.",
    "DeploymentStatus.readyReplicas": "Pods whose Ready condition is true.",
    "DeploymentStatus.availableReplicas": "Pods ready for at least minReadySeconds.",
    "DeploymentStatus.unavailableReplicas": "Pods still needed for the Deployment to be "
                                            "fully available.",
    "DeploymentStatus.collisionCount": "Raised when a template's hash collides with an "
                                       "existing ReplicaSet's, to make the next one unique.",
    "ReplicaSetStatus.replicas": "Pods the selector matches that exist.",
    "ReplicaSetStatus.fullyLabeledReplicas": "Pods that carry every label of the template.",
    "ReplicaSetStatus.readyReplicas": "Pods whose Ready condition is true.",
    "ReplicaSetStatus.availableReplicas": "Pods ready for at least minReadySeconds.",
    "ReplicaSetSpec.replicas": "How many pods to keep. Default 1.",
    "ReplicaSetSpec.minReadySeconds": "How long a new pod must be ready before it counts "
                                      "as available. Default 0.",
    "ReplicaSetSpec.selector": "The labels of the pods this controller owns; the "
                               "template's labels must match it.",
    "ReplicaSetSpec.template": "The pod made when there are too few.",
    "ReplicationControllerSpec.selector": "The labels of the pods this controller owns "
                                          "(equality only); default the template's labels.",
    # --- pods' and containers' status -----------------------------------------------------
    "PodStatus.message": "Why the pod is in its phase, when there is something to say.",
    "PodStatus.reason": "A CamelCase reason for the pod's state, e.g. Evicted.",
    "PodStatus.hostIPs": "The IP addresses of the node the pod runs on.",
    "PodStatus.initContainerStatuses": "The state of each init container.",
    "PodStatus.ephemeralContainerStatuses": "The state of each ephemeral (debug) container.",
    "PodStatus.nominatedNodeName": "A node the scheduler means to place the pod on once "
                                   "room is made there (preemption).",
    "PodIP.ip": "An IP address given to the pod.",
    "ContainerStatus.name": "The container's name, as in the spec.",
    "ContainerStatus.state": "What the container is doing now.",
    "ContainerStatus.lastState": "How its previous run ended (after a restart).",
    "ContainerStatus.ready": "Whether its readiness probe passes (true without a probe "
                             "once running).",
    "ContainerStatus.restartCount": "How many times the container was restarted.",
    "ContainerStatus.image": "The image the container runs.",
    "ContainerStatus.imageID": "The image's digest, as the node resolved it.",
    "ContainerStatus.containerID": "The runtime's id: nodeagent://<id>.",
    "ContainerStatus.started": "Whether its startup probe has passed (true without one "
                               "once running).",
    "ContainerState.waiting": "Not running yet: pulling, creating, or backing off after "
                              "a crash.",
    "ContainerState.running": "Running since startedAt.",
    "ContainerState.terminated": "Ended: its exit code, signal, reason and times.",
    "ContainerStateRunning.startedAt": "When the container (last) started.",
    "ContainerStateWaiting.reason": "Why it waits: ContainerCreating, CrashLoopBackOff, "
                                    "ErrImagePull, ImagePullBackOff, CreateContainerError...",
    "ContainerStateTerminated.exitCode": "The exit status of its last process (128 + the "
                                         "signal's number when killed).",
    "ContainerStateTerminated.signal": "The signal that ended it, if one did.",
    "ContainerStateTerminated.reason": "Completed, Error, OOMKilled or ContainerCannotRun.",
    "ContainerStateTerminated.startedAt": "When the run started.",
    "ContainerStateTerminated.finishedAt": "When it ended.",
    "ContainerStateTerminated.containerID": "The runtime's id of that run.",
    # --- security ---------------------------------------------------------------------------
    "SecurityContext.capabilities": "Linux capabilities to add to or drop from the "
                                    "runtime's default set.",
    "SecurityContext.privileged": "Run with every capability and the host's devices. "
                                  "Refused by the baseline and restricted Pod Security "
                                  "levels.",
    "SecurityContext.runAsUser": "The UID the process runs as. Default the image's user.",
    "SecurityContext.runAsGroup": "The GID the process runs as. Default the image's group.",
    "SecurityContext.runAsNonRoot": "Refuse to start the container if it would run as "
                                    "UID 0.",
    "SecurityContext.readOnlyRootFilesystem": "Mount the container's root file system "
                                              "read-only.",
    "SecurityContext.allowPrivilegeEscalation": "Whether a process may gain more "
                                                "privileges than its parent (setuid "
                                                "binaries); false sets no_new_privs.",
    "SecurityContext.seccompProfile": "The seccomp filter: RuntimeDefault (the default "
                                      "here), Unconfined or Localhost.",
    "SecurityContext.procMount": "Default masks parts of /proc; Unmasked does not.",
    "PodSecurityContext.runAsUser": "The UID every container runs as unless its own "
                                    "securityContext says otherwise.",
    "PodSecurityContext.runAsGroup": "The GID every container runs as unless its own "
                                     "says otherwise.",
    "PodSecurityContext.runAsNonRoot": "Refuse to start any container that would run as "
                                       "UID 0.",
    "PodSecurityContext.fsGroup": "A group that owns the pod's volumes and is added to "
                                  "every container's processes.",
    "PodSecurityContext.supplementalGroups": "More groups for every container's processes.",
    "PodSecurityContext.seccompProfile": "The seccomp filter of every container unless "
                                         "its own says otherwise.",
    "PodSecurityContext.sysctls": "Namespaced sysctls set for the pod.",
    "Capabilities.add": "Capabilities to add, e.g. NET_ADMIN.",
    "Capabilities.drop": "Capabilities to drop; ALL drops every one.",
    "SeccompProfile.type": "RuntimeDefault, Unconfined or Localhost.",
    "SeccompProfile.localhostProfile": "With Localhost: the profile's path on the node.",
    "Sysctl.name": "The sysctl, e.g. net.ipv4.ip_local_port_range.",
    "Sysctl.value": "Its value.",
    # --- volumes --------------------------------------------------------------------------
    "Volume.name": "The volume's name, which volumeMounts refer to.",
    "Volume.emptyDir": "An empty directory made for the pod, removed with it.",
    "Volume.hostPath": "A file or directory of the node. Refused by the baseline Pod "
                       "Security level.",
    "Volume.configMap": "A ConfigMap's keys as files.",
    "Volume.secret": "A Secret's keys as files.",
    "Volume.persistentVolumeClaim": "The storage a claim in the pod's namespace is bound "
                                    "to.",
    "Volume.downwardAPI": "Fields of the pod and its containers' resources as files.",
    "Volume.projected": "Secrets, ConfigMaps, downward API fields and service account "
                        "tokens in one directory.",
    "Volume.gcePersistentDisk": "A GCE persistent disk. Kept, but this server does not "
                                "act on it.",
    "Volume.nfs": "An NFS export, mounted by the node.",
    "EmptyDirVolumeSource.medium": "Where it lives: \"\" (the node's disk) or Memory (a "
                                   "tmpfs, counted against the container's memory).",
    "EmptyDirVolumeSource.sizeLimit": "At most this much; the pod is evicted past it.",
    "HostPathVolumeSource.path": "The path on the node.",
    "HostPathVolumeSource.type": "What must be there: \"\" (anything), DirectoryOrCreate, "
                                 "Directory, FileOrCreate, File, Socket, CharDevice or "
                                 "BlockDevice.",
    "ConfigMapVolumeSource.name": "The ConfigMap's name, in the pod's namespace.",
    "ConfigMapVolumeSource.items": "Only these keys, at these paths (default: every key, "
                                   "named after it).",
    "ConfigMapVolumeSource.defaultMode": "The files' mode bits. Default 0644.",
    "ConfigMapVolumeSource.optional": "Start the pod even if the ConfigMap (or a key) is "
                                      "missing.",
    "SecretVolumeSource.secretName": "The Secret's name, in the pod's namespace.",
    "SecretVolumeSource.items": "Only these keys, at these paths (default: every key, "
                                "named after it).",
    "SecretVolumeSource.defaultMode": "The files' mode bits. Default 0644.",
    "SecretVolumeSource.optional": "Start the pod even if the Secret (or a key) is missing.",
    "KeyToPath.key": "The key to take.",
    "KeyToPath.path": "The relative path of its file in the volume.",
    "KeyToPath.mode": "This file's mode bits, instead of defaultMode.",
    "PersistentVolumeClaimVolumeSource.claimName": "The claim's name, in the pod's "
                                                   "namespace.",
    "PersistentVolumeClaimVolumeSource.readOnly": "Mount it read-only.",
    "NFSVolumeSource.server": "The NFS server's host name or IP.",
    "NFSVolumeSource.path": "The exported path.",
    "NFSVolumeSource.readOnly": "Mount it read-only.",
    "DownwardAPIVolumeSource.items": "The files: each a field of the pod or a container's "
                                     "resource.",
    "DownwardAPIVolumeSource.defaultMode": "The files' mode bits. Default 0644.",
    "DownwardAPIVolumeFile.path": "The file's relative path in the volume.",
    "DownwardAPIVolumeFile.fieldRef": "A field of the pod: metadata.name, namespace, uid, "
                                      "labels or annotations.",
    "DownwardAPIVolumeFile.resourceFieldRef": "A container's request or limit.",
    "DownwardAPIVolumeFile.mode": "This file's mode bits, instead of defaultMode.",
    "ProjectedVolumeSource.sources": "What the directory holds.",
    "ProjectedVolumeSource.defaultMode": "The files' mode bits. Default 0644.",
    "VolumeProjection.secret": "A Secret's keys.",
    "VolumeProjection.configMap": "A ConfigMap's keys.",
    "VolumeProjection.downwardAPI": "Fields of the pod.",
    "VolumeProjection.serviceAccountToken": "A token of the pod's service account, "
                                            "renewed by the node's agent before it expires.",
    "ServiceAccountTokenProjection.audience": "Who the token is for. Default the API "
                                              "server.",
    "ServiceAccountTokenProjection.expirationSeconds": "How long the token lives. Default "
                                                      "3607 (an hour).",
    "ServiceAccountTokenProjection.path": "The token file's relative path.",
    "VolumeMount.mountPropagation": "Whether mounts made later propagate between the host "
                                    "and the container: None (the default), "
                                    "HostToContainer or Bidirectional.",
    # --- probes and lifecycle -------------------------------------------------------------
    "HTTPGetAction.path": "The path to GET. Default /.",
    "HTTPGetAction.port": "The container's port, by number or name.",
    "HTTPGetAction.host": "The host to connect to. Default the pod's IP.",
    "HTTPGetAction.scheme": "HTTP or HTTPS (the certificate is not checked). Default "
                            "HTTP.",
    "HTTPGetAction.httpHeaders": "Headers to send.",
    "HTTPHeader.name": "The header's name.",
    "HTTPHeader.value": "The header's value.",
    "TCPSocketAction.port": "The port to connect to, by number or name: open means "
                            "success.",
    "TCPSocketAction.host": "The host to connect to. Default the pod's IP.",
    "GRPCAction.port": "The port of the gRPC health service.",
    "GRPCAction.service": "The service name to check (grpc.health.v1). Default \"\".",
    "ExecAction.command": "A command run in the container, not in a shell: exit 0 means "
                          "success.",
    "Lifecycle.postStart": "Run right after the container starts; if it fails, the "
                           "container is killed.",
    "Lifecycle.preStop": "Run before the container is stopped, within its grace period.",
    "LifecycleHandler.exec": "A command to run in the container.",
    "LifecycleHandler.httpGet": "An HTTP GET to send.",
    "LifecycleHandler.tcpSocket": "Deprecated: a TCP connection to open.",
    # --- environment ------------------------------------------------------------------------
    "EnvVarSource.fieldRef": "A field of the pod: metadata.name, namespace, uid, labels, "
                             "annotations, spec.nodeName, spec.serviceAccountName, "
                             "status.hostIP, status.podIP.",
    "EnvVarSource.resourceFieldRef": "A container's request or limit.",
    "EnvVarSource.configMapKeyRef": "A key of a ConfigMap.",
    "EnvVarSource.secretKeyRef": "A key of a Secret.",
    "EnvFromSource.prefix": "Put before every variable's name.",
    "EnvFromSource.configMapRef": "Every key of a ConfigMap, as variables.",
    "EnvFromSource.secretRef": "Every key of a Secret, as variables.",
    "KeySelector.key": "The key to read.",
    "KeySelector.name": "The ConfigMap's or Secret's name, in the pod's namespace.",
    "KeySelector.optional": "Start the container even if it is missing.",
    "ObjectFieldSelector.fieldPath": "The field's path, e.g. metadata.name.",
    "ResourceFieldSelector.resource": "limits.cpu, limits.memory, requests.cpu, "
                                      "requests.memory, or their ephemeral-storage.",
    "ResourceFieldSelector.containerName": "The container whose resource it is. Default "
                                           "this one.",
    "ResourceFieldSelector.divisor": "The unit to give it in (1m, 1Mi...). Default 1.",
    # --- scheduling -----------------------------------------------------------------------
    "Affinity.nodeAffinity": "Which nodes the pod may or prefers to run on, by their "
                             "labels.",
    "Affinity.podAffinity": "Run near pods with these labels (on the same node or "
                            "topology domain).",
    "Affinity.podAntiAffinity": "Run away from pods with these labels.",
    "NodeAffinity.requiredDuringSchedulingIgnoredDuringExecution": "Nodes the pod may "
                                                                   "only run on.",
    "NodeAffinity.preferredDuringSchedulingIgnoredDuringExecution": "Nodes the scheduler "
                                                                    "prefers, by weight.",
    "NodeSelector.nodeSelectorTerms": "Any one of these terms must match.",
    "NodeSelectorTerm.matchExpressions": "Requirements on the node's labels, all of which "
                                         "must hold.",
    "NodeSelectorTerm.matchFields": "Requirements on the node's fields (metadata.name).",
    "NodeSelectorRequirement.key": "The label (or field) the requirement is about.",
    "NodeSelectorRequirement.operator": "In, NotIn, Exists, DoesNotExist, Gt or Lt.",
    "NodeSelectorRequirement.values": "The values for In and NotIn; one number for Gt "
                                      "and Lt; none for Exists and DoesNotExist.",
    "PreferredSchedulingTerm.weight": "1-100: how much the scheduler prefers nodes that "
                                      "match.",
    "PreferredSchedulingTerm.preference": "The node term to match.",
    "PodAffinity.requiredDuringSchedulingIgnoredDuringExecution": "Terms that must hold "
                                                                  "for the pod to be "
                                                                  "placed.",
    "PodAffinity.preferredDuringSchedulingIgnoredDuringExecution": "Terms the scheduler "
                                                                   "prefers, by weight.",
    "PodAffinityTerm.labelSelector": "The pods this term is about.",
    "PodAffinityTerm.namespaces": "Their namespaces. Default the pod's own.",
    "PodAffinityTerm.topologyKey": "The node label whose value makes a domain, e.g. "
                                   "kubernetes.io/hostname (one node).",
    "WeightedPodAffinityTerm.weight": "1-100: how much the scheduler prefers this.",
    "WeightedPodAffinityTerm.podAffinityTerm": "The term.",
    "Toleration.key": "The taint's key it tolerates; empty with Exists: every taint.",
    "Toleration.operator": "Equal (the default: key and value match) or Exists (any "
                           "value).",
    "Toleration.value": "The taint's value, for Equal.",
    "Toleration.effect": "The effect it tolerates: NoSchedule, PreferNoSchedule, "
                         "NoExecute, or empty for all.",
    "Toleration.tolerationSeconds": "With NoExecute: how long the pod stays once the "
                                    "taint is added, then it is evicted. Unset: forever.",
    "Taint.key": "The taint's key.",
    "Taint.value": "The taint's value.",
    "Taint.effect": "NoSchedule (no new pods), PreferNoSchedule, or NoExecute (running "
                    "pods without a toleration are evicted).",
    "Taint.timeAdded": "When a NoExecute taint was added.",
    # --- nodes ------------------------------------------------------------------------------
    "NodeSpec.podCIDR": "The range the node's pods take their IPs from.",
    "NodeSpec.podCIDRs": "The node's pod ranges (one per IP family).",
    "NodeSpec.providerID": "The machine's id at its cloud provider, if any.",
    "NodeSpec.unschedulable": "No new pods are scheduled here (kubectl cordon).",
    "NodeSpec.taints": "Pods without a matching toleration are kept off (or evicted).",
    "NodeStatus.capacity": "The node's resources: cpu, memory, pods, ephemeral-storage.",
    "NodeStatus.allocatable": "What pods may use: capacity less what is reserved.",
    "NodeStatus.phase": "Deprecated and unused.",
    "NodeStatus.conditions": "Ready and the pressure conditions, as the agent reports "
                             "them.",
    "NodeStatus.addresses": "InternalIP and Hostname.",
    "NodeStatus.daemonEndpoints": "Where the node's agent listens.",
    "NodeStatus.nodeInfo": "The machine and its software.",
    "NodeAddress.type": "InternalIP, ExternalIP or Hostname.",
    "NodeAddress.address": "The address.",
    "NodeDaemonEndpoints.kubeletEndpoint": "The port of the node's agent (kubelet's, "
                                           "here nodeagent's API).",
    "DaemonEndpoint.Port": "The port number.",
    "NodeSystemInfo.machineID": "/etc/machine-id.",
    "NodeSystemInfo.systemUUID": "The machine's SMBIOS UUID.",
    "NodeSystemInfo.bootID": "Changes at each boot.",
    "NodeSystemInfo.kernelVersion": "uname -r.",
    "NodeSystemInfo.osImage": "PRETTY_NAME of /etc/os-release.",
    "NodeSystemInfo.containerRuntimeVersion": "nodeagent://<version>: the runtime is the "
                                              "agent's own.",
    "NodeSystemInfo.kubeletVersion": "The version the node's agent reports.",
    "NodeSystemInfo.kubeProxyVersion": "Deprecated; the same as kubeletVersion.",
    "NodeSystemInfo.operatingSystem": "linux.",
    "NodeSystemInfo.architecture": "amd64, arm64...",
    # --- events -----------------------------------------------------------------------------
    "Event.involvedObject": "The object the event is about.",
    "Event.regarding": "The object the event is about.",
    "Event.related": "A second object involved, if any.",
    "Event.reason": "Why: a short CamelCase word (Scheduled, Pulled, Killing, "
                    "Unhealthy...).",
    "Event.message": "What happened, for people.",
    "Event.note": "What happened, for people (at most 1 KiB).",
    "Event.source": "The component and host that reported it (legacy).",
    "Event.deprecatedSource": "The component and host that reported it (legacy).",
    "Event.firstTimestamp": "When it was first seen.",
    "Event.deprecatedFirstTimestamp": "When it was first seen (legacy).",
    "Event.lastTimestamp": "When it was last seen.",
    "Event.deprecatedLastTimestamp": "When it was last seen (legacy).",
    "Event.count": "How many times it was seen.",
    "Event.deprecatedCount": "How many times it was seen (legacy).",
    "Event.type": "Normal or Warning.",
    "Event.eventTime": "When it first happened, in microseconds.",
    "Event.series": "For an event that repeats: its count and when it was last seen.",
    "Event.action": "What was done, or failed, e.g. Binding or Pulling.",
    "Event.reportingComponent": "Who reported it, e.g. kubelet or default-scheduler.",
    "Event.reportingController": "Who reported it, e.g. kubelet or default-scheduler.",
    "Event.reportingInstance": "Which instance of the reporter, e.g. the node's name.",
    "EventSeries.count": "How many times it happened in this series.",
    "EventSeries.lastObservedTime": "When it last happened.",
    "EventSource.component": "The component that reported it.",
    "EventSource.host": "The node it was reported on.",
    "ObjectReference.namespace": "The object's namespace.",
    "ObjectReference.name": "The object's name.",
    "ObjectReference.uid": "The object's uid.",
    "ObjectReference.resourceVersion": "The version of the object it refers to.",
    "ObjectReference.fieldPath": "A part of the object, e.g. spec.containers{web}.",
    # --- owners and selectors ---------------------------------------------------------------
    "OwnerReference.name": "The owner's name.",
    "OwnerReference.uid": "The owner's uid: an owner of the same name but another uid "
                          "is not the owner.",
    "OwnerReference.controller": "This owner is the managing controller (at most one "
                                 "is).",
    "OwnerReference.blockOwnerDeletion": "With foreground deletion, the owner is not "
                                         "removed before this object.",
    "LabelSelector.matchLabels": "Labels that must be present with these values.",
    "LabelSelector.matchExpressions": "Requirements that must all hold.",
    "LabelSelectorRequirement.key": "The label's key.",
    "LabelSelectorRequirement.operator": "In, NotIn, Exists or DoesNotExist.",
    "LabelSelectorRequirement.values": "The values for In and NotIn; none otherwise.",
    "LocalObjectReference.name": "The object's name, in the same namespace.",
    "TypedLocalObjectReference.apiGroup": "The object's API group.",
    "TypedLocalObjectReference.name": "The object's name.",
    # --- services and endpoints -------------------------------------------------------------
    "ServiceSpec.sessionAffinityConfig": "With ClientIP affinity: how long a client "
                                         "sticks to its endpoint.",
    "ServiceSpec.loadBalancerIP": "Deprecated: the address to ask a load balancer for.",
    "ServiceSpec.allocateLoadBalancerNodePorts": "With LoadBalancer: whether node ports "
                                                 "are given too. Default true.",
    "SessionAffinityConfig.clientIP": "Settings of ClientIP affinity.",
    "ClientIPConfig.timeoutSeconds": "Seconds a client sticks to its endpoint. Default "
                                     "10800 (3 hours).",
    "ServiceStatus.loadBalancer": "The load balancer's ingress points.",
    "LoadBalancerStatus.ingress": "Where the load balancer answers.",
    "LoadBalancerIngress.ip": "An IP address.",
    "LoadBalancerIngress.hostname": "A DNS name.",
    "Endpoints.subsets": "Groups of addresses that share ports.",
    "EndpointSubset.addresses": "Ready addresses: traffic goes to them.",
    "EndpointSubset.notReadyAddresses": "Addresses of pods not ready (yet).",
    "EndpointSubset.ports": "The ports every address of this subset serves.",
    "EndpointAddress.ip": "The endpoint's IP.",
    "EndpointAddress.hostname": "The endpoint's host name.",
    "EndpointAddress.nodeName": "The node it runs on.",
    "EndpointAddress.targetRef": "The pod behind it.",
    "EndpointPort.port": "The port number.",
    "EndpointPort.name": "The Service port's name it serves.",
    "EndpointPort.protocol": "TCP, UDP or SCTP.",
    "EndpointPort.appProtocol": "The application protocol.",
    "EndpointSlice.addressType": "IPv4, IPv6 or FQDN.",
    "EndpointSlice.endpoints": "At most 1,000 endpoints.",
    "EndpointSlice.ports": "The ports every endpoint serves.",
    "Endpoint.addresses": "The endpoint's addresses (one, for a pod).",
    "Endpoint.conditions": "Whether it is ready, serving and terminating.",
    "Endpoint.hostname": "The endpoint's host name.",
    "Endpoint.targetRef": "The pod behind it.",
    "Endpoint.deprecatedTopology": "Deprecated: use nodeName and zone.",
    "Endpoint.nodeName": "The node it runs on.",
    "Endpoint.zone": "The zone it runs in.",
    "Endpoint.hints": "Where it should be used from (topology aware routing).",
    "EndpointConditions.ready": "Ready for traffic (serving and not terminating).",
    "EndpointConditions.serving": "Its readiness probe passes, terminating or not.",
    "EndpointConditions.terminating": "Its pod is shutting down.",
    "EndpointHints.forZones": "Zones that should use it.",
    "EndpointHints.forNodes": "Nodes that should use it.",
    "ForZone.name": "The zone's name.",
    "ForNode.name": "The node's name.",
    # --- ingress ----------------------------------------------------------------------------
    "IngressSpec.ingressClassName": "The IngressClass (the controller) to serve it.",
    "IngressSpec.defaultBackend": "Where a request no rule matches goes.",
    "IngressSpec.tls": "Hosts served over TLS, and the Secret with their certificate.",
    "IngressSpec.rules": "Host and path rules, tried in order.",
    "IngressRule.host": "The host name it matches (a leading *. matches one label); "
                        "empty: every host.",
    "IngressRule.http": "The paths of this host.",
    "HTTPIngressRuleValue.paths": "Paths and the backends they go to.",
    "HTTPIngressPath.path": "The path it matches.",
    "HTTPIngressPath.pathType": "Exact, Prefix (by path elements) or "
                                "ImplementationSpecific.",
    "HTTPIngressPath.backend": "Where matching requests go.",
    "IngressBackend.service": "A Service and port.",
    "IngressBackend.resource": "Another object of the Ingress's namespace.",
    "IngressServiceBackend.name": "The Service's name.",
    "IngressServiceBackend.port": "Its port, by number or name.",
    "ServiceBackendPort.name": "The Service port's name.",
    "ServiceBackendPort.number": "The Service port's number.",
    "IngressTLS.hosts": "The hosts the certificate is for.",
    "IngressTLS.secretName": "The Secret (type kubernetes.io/tls) holding it.",
    "IngressStatus.loadBalancer": "Where the ingress controller answers.",
    # --- storage ----------------------------------------------------------------------------
    "PersistentVolumeSpec.capacity": "The volume's size (storage).",
    "PersistentVolumeSpec.accessModes": "ReadWriteOnce, ReadOnlyMany, ReadWriteMany or "
                                        "ReadWriteOncePod.",
    "PersistentVolumeSpec.persistentVolumeReclaimPolicy": "What happens when its claim "
                                                          "goes: Retain, Delete or "
                                                          "Recycle.",
    "PersistentVolumeSpec.storageClassName": "The class it belongs to; only claims of "
                                             "that class bind it.",
    "PersistentVolumeSpec.volumeMode": "Filesystem (the default) or Block.",
    "PersistentVolumeSpec.mountOptions": "Options for mounting it.",
    "PersistentVolumeSpec.claimRef": "The claim it is bound (or reserved) to.",
    "PersistentVolumeSpec.nodeAffinity": "The nodes it can be used from (a local volume's "
                                         "node).",
    "PersistentVolumeSpec.hostPath": "A directory of a node.",
    "PersistentVolumeSpec.local": "A local disk or directory of one node.",
    "PersistentVolumeSpec.nfs": "An NFS export.",
    "PersistentVolumeSpec.gcePersistentDisk": "A GCE persistent disk. Kept, but this "
                                              "server does not act on it.",
    "PersistentVolumeStatus.phase": "Available, Bound, Released or Failed.",
    "PersistentVolumeStatus.message": "Why it is in that phase.",
    "PersistentVolumeStatus.reason": "A CamelCase reason for a failure.",
    "PersistentVolumeClaimSpec.accessModes": "The access modes asked for.",
    "PersistentVolumeClaimSpec.selector": "Only volumes with these labels.",
    "PersistentVolumeClaimSpec.resources": "The storage asked for (requests.storage).",
    "PersistentVolumeClaimSpec.volumeName": "Bind this volume.",
    "PersistentVolumeClaimSpec.storageClassName": "The class asked for; \"\" asks for a "
                                                  "volume without one.",
    "PersistentVolumeClaimSpec.volumeMode": "Filesystem (the default) or Block.",
    "PersistentVolumeClaimStatus.phase": "Pending, Bound or Lost.",
    "PersistentVolumeClaimStatus.accessModes": "The bound volume's access modes.",
    "PersistentVolumeClaimStatus.capacity": "The bound volume's size.",
    "VolumeResourceRequirements.requests": "The least storage needed.",
    "VolumeResourceRequirements.limits": "The most storage allowed.",
    "VolumeNodeAffinity.required": "Nodes that can use the volume.",
    "LocalVolumeSource.path": "The path on the node.",
    "LocalVolumeSource.fsType": "Its file system type, for a block device.",
    "GCEPersistentDiskVolumeSource.pdName": "The disk's name.",
    "GCEPersistentDiskVolumeSource.fsType": "Its file system type.",
    "GCEPersistentDiskVolumeSource.partition": "The partition to mount.",
    "GCEPersistentDiskVolumeSource.readOnly": "Mount it read-only.",
    # --- config, secrets, namespaces, accounts ----------------------------------------------
    "ConfigMap.data": "The values, as UTF-8 strings, by key.",
    "ConfigMap.binaryData": "Binary values, base64 in JSON, by key.",
    "ConfigMap.immutable": "Once true, data cannot change (and nodes stop watching it).",
    "Secret.data": "The values, base64 in JSON, by key.",
    "Secret.stringData": "Write-only: plain strings merged into data on write.",
    "Secret.type": "Opaque (the default), kubernetes.io/tls, "
                   "kubernetes.io/dockerconfigjson, kubernetes.io/service-account-token...",
    "Secret.immutable": "Once true, data cannot change.",
    "NamespaceSpec.finalizers": "What must clean up before the namespace is removed.",
    "NamespaceStatus.phase": "Active, or Terminating while its objects are deleted.",
    "ServiceAccount.secrets": "Secrets of the account (legacy tokens).",
    "ServiceAccount.imagePullSecrets": "Registry credentials given to its pods.",
    "ServiceAccount.automountServiceAccountToken": "Whether pods get a token of this "
                                                   "account mounted. Default true.",
    # --- RBAC -------------------------------------------------------------------------------
    "PolicyRule.verbs": "get, list, watch, create, update, patch, delete, deletecollection, "
                        "or * for all.",
    "PolicyRule.apiGroups": "The API groups (\"\" is the core group; * all).",
    "PolicyRule.resources": "Resources (pods, pods/log...; * all).",
    "PolicyRule.resourceNames": "Only these objects by name; empty: all.",
    "PolicyRule.nonResourceURLs": "Paths that are no resource (/healthz, /version...), "
                                  "for ClusterRoles.",
    "Role.rules": "The permissions.",
    "ClusterRole.rules": "The permissions.",
    "ClusterRole.aggregationRule": "Take the rules of ClusterRoles with these labels.",
    "AggregationRule.clusterRoleSelectors": "ClusterRoles whose rules are added.",
    "RoleBinding.subjects": "Who is granted.",
    "RoleBinding.roleRef": "What is granted; it cannot change.",
    "ClusterRoleBinding.subjects": "Who is granted.",
    "ClusterRoleBinding.roleRef": "What is granted; it cannot change.",
    "Subject.name": "The user's, group's or service account's name.",
    "Subject.apiGroup": "rbac.authorization.k8s.io for users and groups, \"\" for service "
                        "accounts.",
    "Subject.namespace": "The service account's namespace.",
    "RoleRef.apiGroup": "rbac.authorization.k8s.io.",
    "RoleRef.name": "The Role's or ClusterRole's name.",
    # --- list metadata and requests -------------------------------------------------------
    "ListMeta.continue": "Pass as continue to get the next page; empty on the last.",
    "ListMeta.remainingItemCount": "How many items are left after this page (when known).",
    "ListMeta.resourceVersion": "The store's version the list was read at: watch from it.",
    "ManagedFieldsEntry.manager": "Who manages these fields (a field manager's name).",
    "ManagedFieldsEntry.operation": "Apply or Update.",
    "ManagedFieldsEntry.time": "When the manager last changed them.",
    "ManagedFieldsEntry.fieldsType": "FieldsV1.",
    "ManagedFieldsEntry.fieldsV1": "The fields, as a set of paths.",
    "ManagedFieldsEntry.subresource": "The subresource they were written through (status, "
                                      "scale), if any.",
    "DeleteOptions.dryRun": "All: check, but do not delete.",
    "DeleteOptions.gracePeriodSeconds": "How long the object may take to go (pods). 0: "
                                        "at once.",
    "DeleteOptions.propagationPolicy": "What becomes of dependents: Orphan, Background "
                                       "(the default) or Foreground.",
    "DeleteOptions.preconditions": "Delete only if the uid or resourceVersion still "
                                   "match.",
    "Status.status": "Success or Failure.",
    "Status.code": "The HTTP status code.",
    "Status.reason": "A CamelCase reason (NotFound, AlreadyExists, Conflict, Invalid...).",
    "Status.message": "What went wrong, for people.",
    "Status.details": "The object concerned and the causes, field by field.",
    # --- workloads --------------------------------------------------------------------------
    "RollingUpdateDeployment.maxUnavailable": "How many pods (or percent of replicas) may "
                                              "be unavailable during the rollout. Default "
                                              "25%.",
    "RollingUpdateDeployment.maxSurge": "How many pods (or percent) may exist beyond "
                                        "replicas during the rollout. Default 25%.",
    "KeysProjection.name": "The ConfigMap's or Secret's name, in the pod's namespace.",
    "KeysProjection.items": "Only these keys, at these paths (default: every key, named "
                            "after it).",
    "KeysProjection.optional": "Start the pod even if it (or a key) is missing.",
    "KeysProjection.defaultMode": "The files' mode bits.",
    "EphemeralContainer.targetContainerName": "A container whose process namespace this "
                                              "one joins (kubectl debug --target).",
})

# Types that hold the same fields as another, described once.
_SAME_AS = {"EphemeralContainer": "Container",
            "ReplicationControllerStatus": "ReplicaSetStatus",
            "ReplicationControllerCondition": "ReplicaSetCondition",
            "ReplicationControllerSpec": "ReplicaSetSpec",
            "DeploymentSpec": "ReplicaSetSpec"}


def describe(type_name: str, field: str) -> str:
    """A field's description, or ''."""
    return (DESCRIPTIONS.get(f"{type_name}.{field}")
            or DESCRIPTIONS.get(f"{_SAME_AS.get(type_name, '')}.{field}")
            or DESCRIPTIONS.get(f"*.{field}", ""))

import Hummingbird
import Prometheus
import Logging
import ServiceLifecycle

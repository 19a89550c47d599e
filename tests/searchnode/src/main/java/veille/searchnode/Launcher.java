package veille.searchnode;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.core.common.transport.BoundTransportAddress;
import org.opensearch.core.common.transport.TransportAddress;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.percolator.PercolatorPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Starts a single embedded OpenSearch node (modules loaded from the classpath, no
 * distribution needed) for Veille's integration tests.
 *
 * <pre>
 * java -cp target/classes:$(cat target/classpath.txt) veille.searchnode.Launcher \
 *     --data DIR [--http-port 0|N] [--transport-port 0|N] [--cluster-name NAME] [--port-file FILE]
 * </pre>
 *
 * When the node is ready (HTTP bound, cluster formed) it prints
 * {@code VEILLE_SEARCHNODE_READY http://127.0.0.1:PORT} and writes the URL to --port-file
 * (atomically). SIGTERM closes the node cleanly.
 */
public final class Launcher {

    /** The modules the crawler relies on, loaded as classpath plugins. */
    static final List<Class<? extends Plugin>> PLUGINS = Arrays.asList(
        Netty4Plugin.class,          // HTTP + transport (netty4)
        CommonAnalysisPlugin.class,  // elision, asciifolding, french stemmer/stop, ...
        PercolatorPlugin.class,      // "percolator" field + percolate query
        MapperExtrasPlugin.class,    // scaled_float, rank_feature, search_as_you_type, ...
        ReindexPlugin.class,         // _reindex, _update_by_query, _delete_by_query
        PainlessPlugin.class         // scripts for update_by_query etc.
    );

    /** Node subclass only to reach the protected constructor that takes classpath plugins. */
    static final class EmbeddedNode extends Node {
        EmbeddedNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) {
        try {
            run(args);
        } catch (Throwable t) {
            // Without this the node's non-daemon pool threads would keep a half-started JVM alive.
            System.err.println("VEILLE_SEARCHNODE_FAILED " + t);
            t.printStackTrace();
            System.err.flush();
            Runtime.getRuntime().halt(1);
        }
    }

    private static void run(String[] args) throws Exception {
        String data = null;
        String httpPort = "0";
        String transportPort = "0";
        String clusterName = "veille-test";
        String portFile = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--data": data = v; i++; break;
                case "--http-port": httpPort = v; i++; break;
                case "--transport-port": transportPort = v; i++; break;
                case "--cluster-name": clusterName = v; i++; break;
                case "--port-file": portFile = v; i++; break;
                default:
                    System.err.println("unknown argument: " + a);
                    System.exit(2);
            }
        }
        if (data == null) {
            System.err.println("--data DIR is required");
            System.exit(2);
        }
        Path home = Paths.get(data).toAbsolutePath();
        Path config = home.resolve("config");
        Files.createDirectories(config);
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));

        Settings settings = Settings.builder()
            .put("cluster.name", clusterName)
            .put("node.name", "veille-node")
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", transportPort)
            .put("discovery.type", "single-node")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            // test node: don't refuse writes because the CI disk is almost full
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", true)
            .put("logger.level", System.getProperty("veille.searchnode.loglevel", "INFO"))
            .build();

        LogConfigurator.registerErrorListener();
        LogConfigurator.configureWithoutConfig(settings);
        LogConfigurator.setNodeName("veille-node");

        long t0 = System.nanoTime();
        Environment env = new Environment(settings, config);
        final Node node = new EmbeddedNode(env, PLUGINS);
        final CountDownLatch keepAlive = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                keepAlive.countDown();
            }
        }, "veille-searchnode-shutdown"));

        node.start();
        BoundTransportAddress bound = node.injector().getInstance(HttpServerTransport.class).boundAddress();
        int port = -1;
        for (TransportAddress ta : bound.boundAddresses()) {
            if (ta.address().getAddress().isLoopbackAddress()
                && ta.address().getAddress().getAddress().length == 4) {
                port = ta.address().getPort();
            }
        }
        if (port < 0) {
            port = bound.publishAddress().getPort();
        }
        String url = "http://127.0.0.1:" + port;
        if (portFile != null) {
            Path pf = Paths.get(portFile).toAbsolutePath();
            Path tmp = pf.resolveSibling(pf.getFileName() + ".tmp");
            Files.write(tmp, (url + "\n").getBytes(StandardCharsets.UTF_8));
            Files.move(tmp, pf, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        System.out.println("VEILLE_SEARCHNODE_READY " + url + " startup_ms="
            + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
        System.out.flush();

        // Keep the JVM alive until SIGTERM/SIGINT (handled by the shutdown hook).
        Thread keeper = new Thread(() -> {
            try {
                keepAlive.await();
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        }, "veille-searchnode-keepalive");
        keeper.setDaemon(false);
        keeper.start();
    }
}

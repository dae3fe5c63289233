/*
 * Runs one Gatling simulation as Gatling's own launcher does (io.gatling.app.Gatling, 3.15.1),
 * with every response Gatling records also written, as it happens, to a JMeter CSV results
 * file the Shibuya sidecar tails: one line per request, from the one place every protocol
 * reports a response (StatsEngine.logResponse), with its status code, which Gatling's own
 * simulation.log does not keep.
 *
 *   java --add-opens=java.base/java.lang=ALL-UNNAMED -cp <gatling jars>:<this>:<simulation>
 *     ShibuyaGatling <simulation class> <results file> <gatling results folder> <properties file>
 *
 * The properties file's entries become system properties first (a run's properties and
 * secrets: never on a command line). The run ends when the simulation does (or when the run's
 * stop sends SIGTERM: the JVM's shutdown then writes what is buffered; requests in flight are
 * not recorded, by Gatling either). Compiled against the pinned Gatling only: it reaches into
 * Gatling's internals (Runner, StatsEngine).
 */

import io.gatling.app.Runner;
import io.gatling.commons.stats.Status;
import io.gatling.commons.util.DefaultClock;
import io.gatling.core.actor.ActorRef;
import io.gatling.core.actor.ActorSystem;
import io.gatling.core.cli.GatlingArgs;
import io.gatling.core.config.GatlingConfiguration;
import io.gatling.core.controller.Controller;
import io.gatling.core.scenario.SimulationParams;
import io.gatling.core.session.GroupBlock;
import io.gatling.core.stats.StatsEngine;
import io.gatling.core.stats.writer.RunMessage;
import io.gatling.netty.util.Transports;
import io.netty.channel.EventLoopGroup;
import java.io.BufferedWriter;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.Properties;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import scala.Option;
import scala.collection.immutable.List;

public final class ShibuyaGatling {
  public static void main(String[] args) throws Exception {
    String simulation = args[0];
    Path results = Paths.get(args[1]);
    Path gatlingResults = Paths.get(args[2]);
    Properties properties = new Properties();
    try (InputStream in = new FileInputStream(args[3])) {
      properties.load(in);
    }
    properties.forEach((k, v) -> System.setProperty((String) k, (String) v));

    Results out = new Results(results);
    Runtime.getRuntime().addShutdownHook(new Thread(out::close, "shibuya-results"));
    ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "shibuya-timer");
      t.setDaemon(true);
      return t;
    });
    timer.scheduleAtFixedRate(out::flush, 100, 100, TimeUnit.MILLISECONDS);

    GatlingArgs gatlingArgs = new GatlingArgs(Option.apply(simulation), Option.empty(), true,
        Option.empty(), Option.apply(gatlingResults), Option.apply("shibuya"), Option.empty());
    GatlingConfiguration configuration = GatlingConfiguration.load();
    ActorSystem system = new ActorSystem();
    EventLoopGroup group = Transports.newEventLoopGroup(configuration.netty().useNativeTransport(),
        configuration.netty().useIoUring(), 0, "gatling");
    try {
      Runner runner = new Runner(system, group, new DefaultClock(), gatlingArgs, configuration) {
        @Override
        public StatsEngine newStatsEngine(SimulationParams params, RunMessage message) {
          return new Tee(super.newStatsEngine(params, message), out);
        }
      };
      runner.run();
    } finally {
      system.close();
      group.shutdownGracefully(0, configuration.core().shutdownTimeout(), TimeUnit.MILLISECONDS)
          .awaitUninterruptibly();
    }
    System.exit(0);
  }

  /** Gatling's own stats engine, and every response also to the results file. */
  static final class Tee implements StatsEngine {
    private final StatsEngine gatling;
    private final Results out;
    private final AtomicBoolean active = new AtomicBoolean(true);

    Tee(StatsEngine gatling, Results out) {
      this.gatling = gatling;
      this.out = out;
    }

    @Override
    public void start() {
      gatling.start();
    }

    @Override
    public void stop(ActorRef<Controller.Command> controller, Option<Exception> exception) {
      active.set(false); // as Gatling's: what comes after its stop is recorded nowhere
      gatling.stop(controller, exception);
      out.flush();
    }

    @Override
    public void logUserStart(String scenario) {
      out.users.incrementAndGet();
      gatling.logUserStart(scenario);
    }

    @Override
    public void logUserEnd(String scenario) {
      out.users.decrementAndGet();
      gatling.logUserEnd(scenario);
    }

    @Override
    public void logResponse(String scenario, List<String> groups, String requestName,
        long startTimestamp, long endTimestamp, Status status, Option<String> responseCode,
        Option<String> message) {
      if (endTimestamp >= 0 && active.get()) { // as Gatling: a negative end is no response
        StringBuilder label = new StringBuilder();
        groups.foreach(g -> label.append(g).append(" / "));
        label.append(requestName);
        boolean ok = "OK".equals(status.name());
        out.write(startTimestamp, endTimestamp - startTimestamp, label.toString(),
            responseCode.isDefined() ? responseCode.get() : "", ok,
            ok || message.isEmpty() ? "" : message.get());
      }
      gatling.logResponse(scenario, groups, requestName, startTimestamp, endTimestamp, status,
          responseCode, message);
    }

    @Override
    public void logGroupEnd(String scenario, GroupBlock groupBlock, long exitTimestamp) {
      gatling.logGroupEnd(scenario, groupBlock, exitTimestamp);
    }

    @Override
    public void logRequestCrash(String scenario, List<String> groups, String requestName,
        String error) {
      gatling.logRequestCrash(scenario, groups, requestName, error);
    }
  }

  /** The results file: JMeter CSV with a header, written by many threads, flushed often. */
  static final class Results {
    final AtomicInteger users = new AtomicInteger();
    private final BufferedWriter writer;

    Results(Path path) throws IOException {
      writer = Files.newBufferedWriter(path, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
          StandardOpenOption.APPEND);
      writer.write("timeStamp,elapsed,label,responseCode,success,failureMessage,grpThreads,"
          + "allThreads\n");
      writer.flush();
    }

    synchronized void write(long start, long elapsed, String label, String code, boolean ok,
        String failure) {
      int n = users.get();
      try {
        writer.write(start + "," + elapsed + "," + csv(label) + "," + csv(code) + "," + ok + ","
            + csv(failure) + "," + n + "," + n + "\n");
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    synchronized void flush() {
      try {
        writer.flush();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    synchronized void close() {
      try {
        writer.close();
      } catch (IOException e) {
        // the JVM is going: nothing to tell anyone
      }
    }

    private static String csv(String value) {
      if (value.indexOf(',') < 0 && value.indexOf('"') < 0 && value.indexOf('\n') < 0
          && value.indexOf('\r') < 0) {
        return value;
      }
      return '"' + value.replace("\"", "\"\"") + '"';
    }
  }
}

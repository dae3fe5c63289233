"""The plans of the engine tests: a locustfile and its data, a Gatling simulation, each against
the HTTP target (Locust's host, the simulation's ``TARGET_URL``); run property ``fail=yes``
makes their ``items`` requests fail."""

LOCUSTFILE = b"""
import csv, json, os
from locust import HttpUser, constant, task

PROPS = json.load(open(os.environ["PLAN_PROPERTIES"]))
NAMES = [row["name"] for row in csv.DictReader(open("users.csv"))]

class Shopper(HttpUser):
    wait_time = constant(0.02)

    @task(3)
    def items(self):
        with self.client.get("/items", name="items", catch_response=True) as r:
            if PROPS.get("fail") == "yes":
                r.failure("told to fail")

    @task
    def login(self):
        self.client.post("/login", name="login", json={"user": NAMES[0]})
"""
USERS_CSV = b"name\n" + b"".join(b"u%d\n" % i for i in range(5))

SIMULATION = b"""package shop;

import static io.gatling.javaapi.core.CoreDsl.*;
import static io.gatling.javaapi.http.HttpDsl.*;

import io.gatling.javaapi.core.*;
import io.gatling.javaapi.http.*;
import java.time.Duration;

public class ShopSimulation extends Simulation {
  int users = Integer.getInteger("shibuya.users", 1);
  int items = "yes".equals(System.getProperty("fail")) ? 201 : 200;
  // The run's duration, unless the run says less ("seconds"): a simulation that ends on its own
  // leaves Gatling's own report complete (a stop, SIGTERM, cuts its log short).
  int seconds = Integer.getInteger("seconds", Integer.getInteger("shibuya.duration", 4));

  HttpProtocolBuilder protocol = http.baseUrl(System.getenv("TARGET_URL"));

  ScenarioBuilder shop = scenario("shop").during(Duration.ofSeconds(seconds)).on(
      exec(http("items").get("/items").check(status().is(items)))
      .exec(http("login").post("/login").body(StringBody("{}")))
      .pause(Duration.ofMillis(20)));

  {
    setUp(shop.injectOpen(atOnceUsers(users)))
        .protocols(protocol);
  }
}
"""

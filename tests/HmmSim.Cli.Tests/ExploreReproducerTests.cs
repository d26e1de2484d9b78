using System.Text.Json;
using HmmSim.Cli.Explore;

namespace HmmSim.Cli.Tests;

/// <summary>The randomized family end to end with a failure injected into the model (CPU writes the
/// model forgets): the run fails a data check, the sequence shrinks, and the scenario file written
/// for it replays under `hmmsim run` to the same failure.</summary>
public class ExploreReproducerTests
{
    private static WorkItem Item(int seed) => new(0, "default", new DesignVariants(), DevicePrivateDesign.DeviceAddressSpace, ExploreBattery.Random, seed);

    [Theory]
    [InlineData(DevicePrivateDesign.PhysicalAddressSpace)]
    [InlineData(DevicePrivateDesign.DeviceAddressSpace)]
    public void TheDefaultMachineMatchesTheModelAndTheDevicePathsAreExercised(DevicePrivateDesign design)
    {
        var total = default(ModelRun.Coverage);
        for (int seed = 1; seed <= 2; seed++)
        {
            var outcome = ModelRun.Execute(RandomSequence.Generate(seed, 100), design, new DesignVariants());
            Assert.True(outcome.Failure is null, outcome.Failure?.ToString());
            Assert.Equal(100, outcome.StepsRun);
            var d = outcome.Done;
            total = new(total.MigratedToDevice + d.MigratedToDevice, total.DeviceReads + d.DeviceReads, total.DeviceWrites + d.DeviceWrites, total.Exclusive + d.Exclusive, total.Forks + d.Forks);
        }
        // The data checks only mean something if the device paths succeeded.
        Assert.True(total.MigratedToDevice > 0 && total.DeviceReads > 0 && total.DeviceWrites > 0 && total.Forks > 0, total.ToString());
    }

    [Fact]
    public void AForgottenWriteIsCaughtShrunkAndReplayedByRun()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"explore-repro-{Guid.NewGuid():N}");
        try
        {
            var options = new ExploreBattery.Options(60, dir, 200, op => op.Kind == RandomOpKind.CpuWrite);
            var result = ExploreBattery.RunRandom(Item(3), options);
            Assert.Equal("failed", result.Status);
            Assert.StartsWith("data in ", result.Check, StringComparison.Ordinal);
            Assert.NotNull(result.Reproducer);
            Assert.True(result.ShrunkTo < result.ShrunkFrom, $"shrunk {result.ShrunkFrom} -> {result.ShrunkTo}");
            // A forgotten write needs only the write and a read after it: the final sweep reads every page.
            Assert.Equal(1, result.ShrunkTo);
            Assert.StartsWith("FAIL at step", result.Replay, StringComparison.Ordinal);

            string path = Path.Combine(dir, result.Reproducer!);
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var steps = doc.RootElement.GetProperty("steps");
            Assert.Equal("fill", steps[steps.GetArrayLength() - 2].GetProperty("op").GetString());
            Assert.Equal("verify", steps[steps.GetArrayLength() - 1].GetProperty("op").GetString());

            var (exit, output, _) = Cli.Run("run", path, "--json");
            Assert.Equal(1, exit);
            using var run = JsonDocument.Parse(output);
            var failure = run.RootElement.GetProperty("designs")[0].GetProperty("failure");
            Assert.Equal("verify", failure.GetProperty("op").GetString());
            Assert.Equal("expectation", failure.GetProperty("kind").GetString());
            Assert.Contains("pattern constant 0", failure.GetProperty("message").GetString(), StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void AReproducerCarriesTheMachinesVariants()
    {
        var variants = new DesignVariants { PgmapPlacement = PgmapPlacement.PageUnion, RmapMatch = RmapMatch.PfnOnly };
        var outcome = ModelRun.Execute(RandomSequence.Generate(1, 5), DevicePrivateDesign.DeviceAddressSpace, variants);
        var machine = outcome.Scenario["machine"]!;
        Assert.Equal("DeviceAddressSpace", (string)machine["designs"]!);
        Assert.Equal("PfnOnly", (string)machine["variants"]!["RmapMatch"]!);
        Assert.Equal("PageUnion", (string)machine["variants"]!["PgmapPlacement"]!);
        string path = Cli.TempScenario(outcome.Scenario.ToJsonString());
        var scenario = Scenarios.ScenarioFile.Load(path);
        Assert.Equal(variants, scenario.Machine.Variants);
    }
}

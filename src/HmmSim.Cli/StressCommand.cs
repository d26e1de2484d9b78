using System.CommandLine;
using HmmSim.Cli.Stress;

namespace HmmSim.Cli;

/// <summary>`hmmsim stress`: the multi-threaded stress run (<see cref="StressEngine"/>) for as long as asked.</summary>
internal static class StressCommand
{
    public static Command Create()
    {
        var cmd = new Command("stress", "Race every operation kind from several threads over two processes, check every value and the invariants. Example: hmmsim stress --threads 4 --seconds 600 --seed 1");
        var threads = new Option<int>("--threads") { Description = "Worker threads (split over two processes).", DefaultValueFactory = _ => 4 };
        var seconds = new Option<int>("--seconds") { Description = "How long to run, per design.", DefaultValueFactory = _ => 10 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of every thread's operations (printed on failure).", DefaultValueFactory = _ => 1 };
        var design = new Option<string>("--design") { Description = "today, redesign or both.", DefaultValueFactory = _ => "both" };
        cmd.Options.Add(threads);
        cmd.Options.Add(seconds);
        cmd.Options.Add(seed);
        cmd.Options.Add(design);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            int n = r.GetValue(threads), s = r.GetValue(seconds);
            if (n < 1 || n > 64 || s < 1)
            {
                error.WriteLine($"hmmsim stress: --threads must be 1 to 64 and --seconds at least 1 (got {n}, {s})");
                return 2;
            }
            DevicePrivateDesign[]? designs = r.GetValue(design) switch
            {
                "today" => [DevicePrivateDesign.PhysicalAddressSpace],
                "redesign" => [DevicePrivateDesign.DeviceAddressSpace],
                "both" => [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace],
                _ => null,
            };
            if (designs is null)
            {
                error.WriteLine($"hmmsim stress: --design must be today, redesign or both, not {r.GetValue(design)}");
                return 2;
            }
            int rc = 0;
            foreach (var d in designs)
            {
                var o = new StressOptions(n, TimeSpan.FromSeconds(s), r.GetValue(seed), d,
                    StopRequested: () => Interrupt.Requested, Tick: ops => Progress.Tick?.Invoke($"{ops:N0} operations"));
                var result = Progress.Run($"stress {CliOptions.Name(d)}, {n} threads for {s} s", false, output, () => new StressEngine(o).Run());
                output.Write(result.Report(o));
                if (Interrupt.Requested)
                {
                    rc = result.Clean ? rc : 1;
                    break;
                }
                if (result.Clean)
                    output.WriteLine($"  {result.Operations / result.Elapsed.TotalSeconds:F0} operations/s");
                else
                    rc = 1;
            }
            if (Interrupt.Requested)
            {
                output.WriteLine("interrupted (Ctrl-C): the report above covers the operations run until then");
                return Interrupt.ExitCode;
            }
            return rc;
        });
        return cmd;
    }
}

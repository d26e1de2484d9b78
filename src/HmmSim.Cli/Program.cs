using System.CommandLine;
using System.Reflection;

namespace HmmSim.Cli;

internal static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("hmmsim: an executable model of Linux HMM, ZONE_DEVICE and device-private memory.");
        root.Subcommands.Add(VersionCommand());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(SelftestCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(LayoutCommand.Create());
        var parsed = root.Parse(args);
        // layout promises one clear message and exit code 2 for bad options, parse errors included.
        if (parsed.Errors.Count > 0 && parsed.CommandResult.Command.Name == LayoutCommand.Name)
        {
            Console.Error.WriteLine($"hmmsim layout: {parsed.Errors[0].Message}");
            return 2;
        }
        return parsed.Invoke();
    }

    private static Command VersionCommand()
    {
        var version = new Command("version", "Print the hmmsim version.");
        version.SetAction(_ =>
        {
            var v = typeof(Machine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            Console.WriteLine($"hmmsim {v}");
            return 0;
        });
        return version;
    }
}

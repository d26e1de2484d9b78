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
        return root.Parse(args).Invoke();
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

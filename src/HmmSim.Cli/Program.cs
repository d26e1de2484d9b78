using System.CommandLine;
using System.Reflection;

namespace HmmSim.Cli;

internal static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("hmmsim: an executable model of Linux HMM, ZONE_DEVICE and device-private memory.");
        var version = new Command("version", "Print the hmmsim version.");
        version.SetAction(_ =>
        {
            var v = typeof(Machine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            Console.WriteLine($"hmmsim {v}");
            return 0;
        });
        root.Subcommands.Add(version);
        return root.Parse(args).Invoke();
    }
}

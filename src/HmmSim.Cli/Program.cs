using System.CommandLine;
using System.Reflection;

namespace HmmSim.Cli;

internal static class Program
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>The whole command line, in-process: what Main does, with its output and errors to the given writers.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        // Help says hmmsim whatever the executable is called (dotnet run runs HmmSim.Cli).
        var root = new RootCommand("hmmsim: an executable model of Linux HMM, ZONE_DEVICE and device-private memory.") { HelpName = "hmmsim" };
        root.Subcommands.Add(VersionCommand());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(SelftestCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(LayoutCommand.Create());
        root.Subcommands.Add(Proposals.ProposalsCommand.Create());
        var parsed = root.Parse(args);
        // Bad input is exit code 2 with one clear message, for every verb (System.CommandLine's default is 1).
        if (parsed.Errors.Count > 0)
        {
            error.WriteLine($"hmmsim {parsed.CommandResult.Command.Name}: {parsed.Errors[0].Message}");
            return 2;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }

    private static Command VersionCommand()
    {
        var version = new Command("version", "Print the hmmsim version.");
        version.SetAction(r =>
        {
            var v = typeof(Machine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            r.InvocationConfiguration.Output.WriteLine($"hmmsim {v}");
            return 0;
        });
        return version;
    }
}

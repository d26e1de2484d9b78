using System.CommandLine;
using System.Reflection;

namespace HmmSim.Cli;

internal static class Program
{
    public static int Main(string[] args)
    {
        Interrupt.Install();
        return Run(args, Console.Out, Console.Error);
    }

    /// <summary>The whole command line, in-process: what Main does, with its output and errors to the given writers.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = Root();
        var parsed = root.Parse(args);
        // Bad input is exit code 2 with one clear message, for every verb (System.CommandLine's default is 1).
        if (parsed.Errors.Count > 0)
        {
            error.WriteLine(ParseErrors.Describe(parsed));
            return 2;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }

    /// <summary>Every verb. Help says hmmsim whatever the executable is called (dotnet run runs HmmSim.Cli).</summary>
    public static RootCommand Root()
    {
        var root = new RootCommand("hmmsim: an executable model of Linux HMM, ZONE_DEVICE and device-private memory.") { HelpName = "hmmsim" };
        root.Subcommands.Add(VersionCommand());
        root.Subcommands.Add(TraceOption.AddTo(RunCommand.Create()));
        root.Subcommands.Add(TraceOption.AddTo(SelftestCommand.Create()));
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(LayoutCommand.Create());
        root.Subcommands.Add(DecodeCommand.Create());
        root.Subcommands.Add(StressCommand.Create());
        root.Subcommands.Add(Proposals.ProposalsCommand.Create());
        root.Subcommands.Add(TraceOption.AddTo(Explore.ExploreCommand.Create()));
        return root;
    }

    public static string Version => typeof(Machine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    private static Command VersionCommand()
    {
        var version = new Command("version", "Print the hmmsim version.");
        version.SetAction(r =>
        {
            r.InvocationConfiguration.Output.WriteLine($"hmmsim {Version}");
            return 0;
        });
        return version;
    }
}

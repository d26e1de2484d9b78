using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace HmmSim.Cli.Tests;

/// <summary>Shards as the batch engines run them: separate `hmmsim explore` processes told their slice
/// by Slurm's or Kubernetes' environment variables, merged with `hmmsim explore merge`, give the
/// same matrix and items as one unsharded run.</summary>
public class ExploreShardTests
{
    private static readonly string[] _battery = ["--variants", "default", "--variant", "PgmapPlacement=PageUnion", "--families", "random", "--seeds", "2", "--steps", "20", "--json"];

    /// <summary>`dotnet HmmSim.Cli.dll explore ARGS` with only the given engine variables set.</summary>
    private static (int Exit, string Out, string Err) RunProcess(IReadOnlyList<string> args, IReadOnlyDictionary<string, string> env)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "HmmSim.Cli.dll"));
        psi.ArgumentList.Add("explore");
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        foreach (var name in new[] { "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "JOB_COMPLETION_INDEX", "HMMSIM_SHARD_COUNT" })
            psi.Environment.Remove(name);
        foreach (var (k, v) in env)
            psi.Environment[k] = v;
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr);
    }

    private static string RunShardProcess(IReadOnlyDictionary<string, string> env)
    {
        var (exit, output, err) = RunProcess(_battery, env);
        Assert.True(exit is 0 or 1, $"shard exited {exit}: {err}");
        return output;
    }

    private static string Comparable(string json)
    {
        var doc = JsonNode.Parse(json)!.AsObject();
        doc.Remove("shard");
        return doc.ToJsonString();
    }

    [Fact]
    public void SlurmAndKubernetesShardsMergeToTheUnshardedRun()
    {
        var (exit, whole, err) = Cli.Run(["explore", .. _battery]);
        Assert.True(exit is 0 or 1, err);

        string dir = Path.Combine(Path.GetTempPath(), $"explore-shards-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            // A Slurm array --array=1-2 (tasks numbered from 1) and a 3-way Indexed Job would not mix in
            // one merge; use one engine per merge.
            var slurm = Enumerable.Range(1, 3).Select(i => RunShardProcess(new Dictionary<string, string>
            {
                ["SLURM_ARRAY_TASK_ID"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["SLURM_ARRAY_TASK_MIN"] = "1",
                ["SLURM_ARRAY_TASK_COUNT"] = "3",
            })).ToList();
            var k8s = Enumerable.Range(0, 2).Select(i => RunShardProcess(new Dictionary<string, string>
            {
                ["JOB_COMPLETION_INDEX"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["HMMSIM_SHARD_COUNT"] = "2",
            })).ToList();
            foreach (var (name, shards) in new[] { ("slurm", slurm), ("k8s", k8s) })
            {
                var files = shards.Select((s, i) =>
                {
                    string f = Path.Combine(dir, $"{name}-{i}.json");
                    File.WriteAllText(f, s);
                    return f;
                }).ToList();
                foreach (var s in shards)
                    Assert.True(JsonNode.Parse(s)!["items"]!.AsArray().Count < JsonNode.Parse(whole)!["items"]!.AsArray().Count);
                var (mexit, merged, merr) = Cli.Run(["explore", "merge", .. files, "--json"]);
                Assert.True(mexit == exit, $"{name}: merge exit {mexit}, unsharded {exit}: {merr}");
                Assert.Equal(Comparable(whole), Comparable(merged));
                var (texit, text, _) = Cli.Run(["explore", "merge", .. files]);
                Assert.Equal(exit, texit);
                Assert.Contains("pass 2", text, StringComparison.Ordinal);
            }
            // A shard missing is an error, not a smaller matrix.
            var (missing, _, why) = Cli.Run("explore", "merge", Path.Combine(dir, "slurm-0.json"), Path.Combine(dir, "slurm-1.json"));
            Assert.Equal(2, missing);
            Assert.Contains("work items are missing", why, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void AnIndexWithoutACountIsBadInput()
    {
        var (exit, _, err) = RunProcess([], new Dictionary<string, string> { ["JOB_COMPLETION_INDEX"] = "0" });
        Assert.Equal(2, exit);
        Assert.Contains("HMMSIM_SHARD_COUNT", err, StringComparison.Ordinal);
    }
}

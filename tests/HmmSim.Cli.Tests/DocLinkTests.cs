using System.Text.RegularExpressions;

namespace HmmSim.Cli.Tests;

/// <summary>The docs stand alone: every relative link in README.md and docs/ resolves inside the
/// repository, and none points at material outside it.</summary>
public partial class DocLinkTests
{
    [GeneratedRegex(@"\]\(([^)\s]+)(?:\s+""[^""]*"")?\)")]
    private static partial Regex MarkdownLink();

    private static List<string> Files() =>
        ["README.md", .. Directory.GetFiles(Path.Combine(Cli.RepoRoot, "docs"), "*.md").Order(StringComparer.Ordinal).Select(f => Path.GetRelativePath(Cli.RepoRoot, f))];

    public static TheoryData<string> Documents() => [.. Files()];

    [Theory]
    [MemberData(nameof(Documents))]
    public void EveryRelativeLinkResolves(string document)
    {
        string path = Path.Combine(Cli.RepoRoot, document);
        string dir = Path.GetDirectoryName(path)!;
        var broken = new List<string>();
        foreach (Match m in MarkdownLink().Matches(File.ReadAllText(path)))
        {
            string target = m.Groups[1].Value;
            if (target.StartsWith('#') || target.Contains("://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal))
                continue;
            string file = Uri.UnescapeDataString(target.Split('#')[0]);
            string full = Path.GetFullPath(Path.Combine(dir, file));
            if (!full.StartsWith(Cli.RepoRoot, StringComparison.Ordinal) || (!File.Exists(full) && !Directory.Exists(full)))
                broken.Add(target);
        }
        Assert.True(broken.Count == 0, $"{document}: links that do not resolve inside the repository: {string.Join(", ", broken)}");
    }

    [Fact]
    public void NoDocPointsAtTheSharedFolder()
    {
        foreach (var document in Files())
        {
            string text = File.ReadAllText(Path.Combine(Cli.RepoRoot, document));
            Assert.False(Regex.IsMatch(text, @"[\s(`]shared/"), $"{document} points at shared/, which is not in a clone of this repository");
        }
    }
}

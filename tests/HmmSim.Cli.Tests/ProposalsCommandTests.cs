using System.Text.Json;
using HmmSim.Cli.Proposals;

namespace HmmSim.Cli.Tests;

public class ProposalsCommandTests
{
    public static TheoryData<string> Proposals => ["Zone", "Identity", "Minimal", "All"];

    private static DesignVariants VariantsFor(string name) => name switch
    {
        "Zone" => new DesignVariants { Zone = DevicePrivateZone.ZoneDevicePrivate },
        "Identity" => new DesignVariants { Identity = DevicePrivateIdentity.PerPagemapSpace },
        "Minimal" => new DesignVariants { DevicePageMetadata = DevicePageMetadata.Minimal },
        _ => new DesignVariants
        {
            Zone = DevicePrivateZone.ZoneDevicePrivate,
            Identity = DevicePrivateIdentity.PerPagemapSpace,
            DevicePageMetadata = DevicePageMetadata.Minimal,
        },
    };

    [Theory]
    [MemberData(nameof(Proposals))]
    public void EachProposalGivesTheDefaultRedesignsAnswers(string proposal)
    {
        var baseline = ProposalWorkload.Answers(new DesignVariants());
        Assert.Contains(baseline, a => a.StartsWith("migrate to device:", StringComparison.Ordinal));
        Assert.Contains("device read equal: True", baseline);
        Assert.Equal(baseline, ProposalWorkload.Answers(VariantsFor(proposal)));
    }

    [Fact]
    public void ProposalsJsonReportsEveryDesignAndShapeWithKernelMetadata()
    {
        var (exit, output, _) = Cli.Run("proposals", "--json", "--no-battery");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var designs = doc.RootElement.GetProperty("designs");
        Assert.Equal(6, designs.GetArrayLength());
        foreach (var d in designs.EnumerateArray())
        {
            Assert.Equal(3, d.GetProperty("Shapes").GetArrayLength());
            if (d.GetProperty("Design").GetString() != "today (physical address space)")
                Assert.True(d.GetProperty("SameAnswers").GetBoolean());
            foreach (var s in d.GetProperty("Shapes").EnumerateArray())
            {
                Assert.Equal("", s.GetProperty("RegisterError").GetString());
                // The kernel's metadata is what its descriptor size says for every page of the shape.
                long pages = (long)s.GetProperty("MemmapPagesInitialisedByKernel").GetUInt64();
                Assert.Equal(pages * d.GetProperty("DescriptorBytesPerPage").GetInt32(), s.GetProperty("KernelMetadataBytes").GetInt64());
            }
        }
        var today = designs[0].GetProperty("Shapes")[2];
        Assert.Equal(256L << 20, today.GetProperty("KernelMetadataBytes").GetInt64());   // 16 GiB -> 256 MiB (1.56 %)
        Assert.True(doc.RootElement.GetProperty("pageFlags").GetArrayLength() > 0);
        Assert.Equal(3, doc.RootElement.GetProperty("identityBudget").GetArrayLength());
    }

    [Fact]
    public void ProposalsReportIsSelfContainedHtml()
    {
        string path = Path.Combine(Path.GetTempPath(), $"proposals-{Guid.NewGuid():N}.html");
        try
        {
            var (exit, output, _) = Cli.Run("proposals", "--no-battery", "--report", path);
            Assert.Equal(0, exit);
            Assert.Contains("page->flags with ZONE_DEVICE_PRIVATE", output, StringComparison.Ordinal);
            string html = File.ReadAllText(path);
            Assert.Contains("<svg", html, StringComparison.Ordinal);
            Assert.Contains("Kernel metadata per TiB", html, StringComparison.Ordinal);
            Assert.DoesNotContain("<script", html, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}

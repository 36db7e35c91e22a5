using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Tests.Facets;

[TestClass]
public sealed class DirectoryFacetTests : FacetContractTests
{
    private string Root => Path.Combine(Scratch, "root");

    protected override IFacet CreateFacet(string scratchDir) => new DirectoryFacet("dir", Path.Combine(scratchDir, "root"), maxOpenHandles: 4);

    [TestMethod]
    public async Task Files_ArePlainFilesInTheFolder_AndNothingElseIsWritten()
    {
        await Facet.CreateDirectoryAsync("docs", (UnixFileMode)0b111_101_101, default);
        var f = new FileRef(1, "docs/readme.txt");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(f, 0, "plain"u8.ToArray(), default);
        await Facet.FlushAsync(default);
        Assert.AreEqual("plain", File.ReadAllText(Path.Combine(Root, "docs", "readme.txt")));
        CollectionAssert.AreEquivalent(new[] { "docs", Path.Combine("docs", "readme.txt") },
            Directory.EnumerateFileSystemEntries(Root, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(Root, p)).ToArray());
    }

    [TestMethod]
    public async Task HandleCache_FiftyFilesThroughFourHandles_RoundTrip()
    {
        for (int i = 0; i < 50; i++)
        {
            var f = new FileRef(100 + i, $"f{i}");
            await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
            await Facet.WriteAsync(f, 0, Bytes(1000, i), default);
        }
        await Facet.FlushAsync(default);
        for (int i = 0; i < 50; i++)
        {
            CollectionAssert.AreEqual(Bytes(1000, i), File.ReadAllBytes(Path.Combine(Root, $"f{i}")));
        }
    }

    [TestMethod]
    public async Task Open_MissingFolderWithoutCreate_NamesTheFolder()
    {
        string missing = Path.Combine(Scratch, "nope");
        await using var facet = new DirectoryFacet("x", missing, createIfMissing: false);
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await facet.OpenAsync(default));
        Assert.AreEqual(MirrorError.NotFound, e.Error);
        StringAssert.Contains(e.Message, missing);
        StringAssert.Contains(e.Message, "createIfMissing");
    }
}

/// <summary>The contract holds through a simulated link too (a decorator must not change meaning).</summary>
[TestClass]
public sealed class SimulatedLinkContractTests : FacetContractTests
{
    protected override IFacet CreateFacet(string scratchDir)
        => new SimulatedLink(new DirectoryFacet("linked", Path.Combine(scratchDir, "root")), seed: 1) { RoundTrip = TimeSpan.FromMilliseconds(1) };
}

namespace CloudMirrorFs.Tests.Support;

/// <summary>Compares two folders byte for byte: same names, same kinds, same file contents.</summary>
public static class TreeAssert
{
    public static void Equal(string expectedRoot, string actualRoot, string because = "")
    {
        var expected = Walk(expectedRoot);
        var actual = Walk(actualRoot);
        var missing = expected.Keys.Except(actual.Keys).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var extra = actual.Keys.Except(expected.Keys).OrderBy(k => k, StringComparer.Ordinal).ToList();
        Assert.AreEqual(0, missing.Count, $"{because}: missing in {actualRoot}: {string.Join(", ", missing.Take(10))}");
        Assert.AreEqual(0, extra.Count, $"{because}: extra in {actualRoot}: {string.Join(", ", extra.Take(10))}");
        foreach (var (rel, isDir) in expected)
        {
            Assert.AreEqual(isDir, actual[rel], $"{because}: {rel} differs in kind");
            if (!isDir)
            {
                byte[] a = File.ReadAllBytes(Path.Combine(expectedRoot, rel));
                byte[] b = File.ReadAllBytes(Path.Combine(actualRoot, rel));
                Assert.AreEqual(a.Length, b.Length, $"{because}: {rel} length");
                int diff = a.AsSpan().CommonPrefixLength(b);
                Assert.AreEqual(a.Length, diff, $"{because}: {rel} differs first at byte {diff}");
            }
        }
    }

    private static Dictionary<string, bool> Walk(string root)
    {
        var result = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (string p in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            result[Path.GetRelativePath(root, p).Replace('\\', '/')] = Directory.Exists(p);
        }
        return result;
    }
}

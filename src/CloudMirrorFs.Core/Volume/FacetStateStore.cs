using System.Text.Json;
using System.Text.Json.Serialization;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Volume;

/// <summary>Facet states persisted atomically in <c>stateDir/facets.json</c> (temp file, flush, rename) and restored at open.</summary>
internal static class FacetStateStore
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>
    /// One facet's saved state; <paramref name="StoreIdentity"/>, <paramref name="QueueId"/>, <paramref name="StoreImage"/>
    /// <paramref name="FileSystem"/> (<see cref="IFolderHome"/>), <paramref name="UnqueuedThrough"/> and <paramref name="Held"/>
    /// (<see cref="FacetSlot"/>) are absent from files older builds wrote.
    /// </summary>
    public sealed record Entry(FacetState State, string? Reason, string Kind, FacetRole Role, string? Path, string? StoreIdentity = null, string? QueueId = null,
        long? StoreImage = null, string? FileSystem = null, long? UnqueuedThrough = null, bool Held = false);

    public static string FilePath(string stateDir) => System.IO.Path.Combine(stateDir, "facets.json");

    /// <summary>Reads the saved states; null when the volume has never been opened.</summary>
    public static Dictionary<string, Entry>? Load(string stateDir)
    {
        string path = FilePath(stateDir);
        if (PathProbe.Attributes(path) is null)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, Entry>>(File.ReadAllBytes(path), Json);
        }
        catch (JsonException e)
        {
            throw new MirrorException(MirrorError.IoError,
                $"facet state file {path} is damaged ({e.Message}); restore it from a backup, or delete it to treat every facet but the first local one as needing a full resync");
        }
    }

    public static void Save(string stateDir, IEnumerable<FacetSlot> slots)
    {
        var map = slots.ToDictionary(s => s.Name, s => new Entry(s.State, s.Reason, s.Options.Kind, s.Role, s.Options.Path, s.StoreIdentity, s.QueueId, s.SeenImage(),
            IFacetDecorator.Unwrap(s.Facet) is IFolderHome home ? home.FileSystem : null, s.UnqueuedThrough, s.Held));
        AtomicFile.Write(FilePath(stateDir), JsonSerializer.SerializeToUtf8Bytes(map, Json));
    }
}

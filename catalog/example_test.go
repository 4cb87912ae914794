package catalog_test

import (
	"encoding/json"
	"fmt"

	"github.com/plexica/eventbus/catalog"
)

// Decode the data of a core event whose type is known only at run time.
func ExampleNewData() {
	eventType, raw := "core.workspace.member_added", []byte(`{"workspaceId":"ws-1","userId":"u-7","role":"VIEWER"}`)
	data, ok := catalog.NewData(eventType)
	if !ok {
		fmt.Println("not a core event:", eventType)
		return
	}
	if err := json.Unmarshal(raw, data); err != nil {
		panic(err)
	}
	m := data.(*catalog.MemberAddedData)
	fmt.Println(m.WorkspaceID, m.UserID, m.Role)
	// Output: ws-1 u-7 VIEWER
}
